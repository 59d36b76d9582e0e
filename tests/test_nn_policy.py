"""simulator.nn.LayerPolicy: glob rules in order, validation, binding, round trips."""

import json

import pytest

from simulator import FP16, TileConfig
from simulator.nn import LayerPolicy, PolicyError, escape_pattern

LAYERS = ["conv1", "stack1.conv_a", "stack1.conv_b", "stack2.conv_a", "fc"]


def policy():
    return LayerPolicy(
        TileConfig(n=32, gain=2.0),
        [
            {"pattern": "stack*", "gain": 4.0, "by": 10},
            {"pattern": "stack2.*", "gain": 8.0},
            {"pattern": "fc", "float32": True},
        ],
    )


def test_matching_rules_apply_in_order_later_fields_win():
    p = policy()
    assert p.config("conv1") == TileConfig(n=32, gain=2.0)
    assert p.config("stack1.conv_a") == TileConfig(n=32, gain=4.0, by=10)
    assert p.config("stack2.conv_a") == TileConfig(n=32, gain=8.0, by=10)
    assert p.settings("fc").float32 and not p.settings("conv1").float32
    assert p.matching("stack2.conv_a") == ["stack*", "stack2.*"]
    assert not p.settings("conv1").matmul


def test_glob_syntax_is_fnmatch_case_sensitive():
    p = LayerPolicy(TileConfig(), [{"pattern": "l?yer[0-9]", "n": 16}])
    assert p.config("layer3").n == 16 and p.config("lAyer9").n == 16
    assert p.config("Layer3").n == 128 and p.config("layer10").n == 128


def test_escape_pattern_matches_only_that_name():
    name = "odd[1]*name?"
    p = LayerPolicy(TileConfig(), [{"pattern": escape_pattern(name), "gain": 4.0}])
    assert p.config(name).gain == 4.0
    assert p.config("odd1xname?").gain == 1.0 and p.config("odd[1]Xname!").gain == 1.0


@pytest.mark.parametrize(
    "rule,message",
    [
        ({"pattern": "a", "gian": 2.0}, r"policy rule 0 \('a'\): unknown field\(s\) \['gian'\]"),
        ({"pattern": "a", "seed": 3}, r"unknown field\(s\) \['seed'\] \(the seed is per run"),
        ({"gain": 2.0}, "policy rule 0 needs a non-empty string 'pattern'"),
        ({"pattern": "a"}, r"policy rule 0 \('a'\) sets no field"),
        ({"pattern": "a", "bx": 1}, r"policy rule 0 \('a'\): TileConfig.bx must be an int in"),
        ({"pattern": "a", "gain": -1.0}, "TileConfig.gain must be finite and > 0"),
        ({"pattern": "a", "noise": "pink"}, "TileConfig.noise must be one of"),
        ({"pattern": "a", "matmul": "yes"}, "matmul must be true or false"),
        ({"pattern": "a", "in_fmt": "bf17"}, "in_fmt"),
        ("a", "policy rule 0 must be a table/dict"),
    ],
)
def test_bad_rules_are_named(rule, message):
    with pytest.raises(PolicyError, match=message):
        LayerPolicy(TileConfig(), [rule])


def test_a_rule_only_invalid_together_with_the_default_is_refused_when_built():
    with pytest.raises(PolicyError, match=r"rule 0 .*n \* M\(bx\) \* M\(bw\)"):
        LayerPolicy(TileConfig(bx=16, bw=16), [{"pattern": "*", "n": 1 << 24}])


def test_binding_checks_every_pattern_names_a_layer():
    bound = policy().bind(LAYERS)
    assert bound.config("stack1.conv_b").gain == 4.0
    with pytest.raises(PolicyError, match=r"rule 1: pattern 'stack3\.\*' matches no layer"):
        LayerPolicy(TileConfig(), [{"pattern": "fc", "gain": 2.0},
                                   {"pattern": "stack3.*", "gain": 2.0}]).bind(LAYERS)
    with pytest.raises(PolicyError, match="layer 'head' is not one of the model's layer names"):
        bound.config("head")


def test_dict_json_and_toml_round_trips(tmp_path):
    p = LayerPolicy(TileConfig(n=64, out_fmt=FP16), [{"pattern": "a*", "w_fmt": FP16, "by": 9}])
    data = p.to_dict()
    assert data["rules"] == [{"pattern": "a*", "w_fmt": "fp16", "by": 9}]
    json.dumps(data)  # plain data
    assert LayerPolicy.from_dict(data) == p
    (tmp_path / "p.json").write_text(json.dumps(data))
    assert LayerPolicy.load(tmp_path / "p.json") == p
    (tmp_path / "p.toml").write_text(
        '[default]\nn = 64\nout_fmt = "fp16"\n\n[[rules]]\npattern = "a*"\nw_fmt = "fp16"\nby = 9\n'
    )
    assert LayerPolicy.load(tmp_path / "p.toml") == p


def test_bad_policy_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[default]\nn = 64\nbogus = 1\n")
    with pytest.raises(PolicyError, match=r"bad.toml: policy default: unknown TileConfig fields"):
        LayerPolicy.load(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(PolicyError, match="broken.json: not valid JSON"):
        LayerPolicy.load(broken)
    with pytest.raises(PolicyError, match="must end in .toml or .json"):
        LayerPolicy.load(tmp_path / "p.yaml")
    with pytest.raises(PolicyError, match="missing.toml: No such file"):
        LayerPolicy.load(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match=r"unknown policy key\(s\) \['rule'\]"):
        LayerPolicy.from_dict({"rule": []})


def test_table_lists_each_layer_and_the_rules_behind_it():
    text = policy().bind(LAYERS).table()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "on", "n"]
    assert len(lines) == 2 + len(LAYERS)
    row = next(line for line in lines if line.startswith("stack2.conv_a"))
    assert row.split()[:7] == ["stack2.conv_a", "tile", "32", "8", "8", "10", "8"]
    assert row.endswith("stack*, stack2.*")
    assert next(line for line in lines if line.startswith("fc")).split()[1] == "float32"
    assert "(default)" in policy().table()


def test_with_rules_appends_with_precedence():
    p = policy().with_rules([{"pattern": "stack*", "gain": 16.0}])
    assert p.config("stack2.conv_a").gain == 16.0 and p.config("conv1").gain == 2.0

"""Design-space sweeps of real networks on the tile (docs/networks.md, docs/scale-out.md).

A sweep runs every cell of models x a grid of ``TileConfig`` axes x calibration on/off x noise
seeds, serially or as Dask distributed tasks, and writes one tidy row per cell:

- :mod:`simulator.sweep.grid`: the sweepable axes;
- :mod:`simulator.sweep.spec`: the sweep (flags or a sweep file) and its cells;
- :mod:`simulator.sweep.results`: the results files, appended row by row, resumable;
- :mod:`simulator.sweep.engine`: the serial and Dask runners;
- :mod:`simulator.sweep.plots`: heat maps, curves and per-layer bars (matplotlib);
- ``python -m simulator.sweep``: the command line.

Dask and matplotlib are imported only when a sweep runs on Dask or plots.
"""

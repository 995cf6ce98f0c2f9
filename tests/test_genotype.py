"""Genotypes: validation, JSON round trip, printing, default genotype."""
import json

import pytest

from hinas_lib.genotype import (FORMAT, VERSION, Genotype, GenotypeError, default_genotype,
                                edge_index, edges_per_cell, input_name)

CELL_A = ((("conv_3x3", 1), ("skip_connect", 0)),
          (("sep_conv_3x3", 2), ("dil_conv_5x5", 0)),
          (("sep_conv_5x5", 3), ("dil_conv_3x3", 2)))
CELL_B = ((("dil_conv_3x3", 0), ("conv_3x3", 1)),
          (("skip_connect", 1), ("sep_conv_5x5", 2)),
          (("conv_3x3", 3), ("conv_3x3", 2)))


def _c(*blocks):
    """cells of a one-layer genotype with these blocks"""
    return (tuple(blocks),)


def _geno(path=(0, 1, 2), cells=(CELL_A, CELL_B, CELL_A)):
    return Genotype(cells=cells, path=path)


def _as_dict(g):
    return json.loads(g.to_json())


def test_basic_properties():
    g = _geno()
    assert g.layers == 3 and g.blocks == 3
    assert g.width_factors == (1.0, 1.5, 2.0)
    assert g.ops()[:2] == ["conv_3x3", "skip_connect"] and len(g.ops()) == 3 * 3 * 2
    assert [input_name(i) for i in range(4)] == ["s0", "s1", "b0", "b1"]


def test_lists_are_normalised_to_tuples_and_hashable():
    g = Genotype(cells=[[[["conv_3x3", 1], ["skip_connect", 0]]]], path=[1], width_factors=[1, 2])
    assert g.cells == (((("conv_3x3", 1), ("skip_connect", 0)),),)
    assert g.path == (1,) and g.width_factors == (1.0, 2.0)
    assert hash(g) == hash(Genotype(cells=g.cells, path=(1,), width_factors=(1.0, 2.0)))


def test_json_round_trip_and_file_round_trip(tmp_path):
    g = _geno(path=(1, 1, 0))
    d = _as_dict(g)
    assert d["format"] == FORMAT and d["version"] == VERSION
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(g.to_dict()) == g
    p = tmp_path / "sub" / "geno.json"
    g.save(p)
    assert Genotype.load(p) == g
    assert Genotype.load(str(p)) == g
    assert [x.name for x in p.parent.iterdir()] == ["geno.json"]  # no temp files left
    g2 = Genotype(cells=(CELL_A,), path=(1,), width_factors=(1.0, 1.25, 3.0))
    g2.save(p)  # overwrite
    assert Genotype.load(p) == g2 and Genotype.load(p) != g


def test_str_contains_ops_and_width_path():
    g = _geno(path=(0, 1, 2))
    text = str(g)
    for op in set(g.ops()):
        assert op in text
    assert "1x -> 1.5x -> 2x" in text
    assert "3 layers x 3 blocks" in text
    assert "b0 = conv_3x3(s1) + skip_connect(s0)" in text
    assert "b2 = sep_conv_5x5(b1) + dil_conv_3x3(b0)" in text


@pytest.mark.parametrize("cells,path,msg", [
    (_c((("conv_9x9", 0), ("conv_3x3", 1))), (0,), r"layer 0 block 0: unknown op 'conv_9x9'"),
    (_c((("none", 0), ("conv_3x3", 1))), (0,), r"layer 0 block 0: unknown op 'none'"),
    (_c((("conv_3x3", 2), ("conv_3x3", 1))), (0,), r"layer 0 block 0: input index 2 out of range \[0, 2\)"),
    (_c((("conv_3x3", -1), ("conv_3x3", 1))), (0,), r"input index -1 out of range"),
    (_c(CELL_A[0], (("conv_3x3", 0), ("conv_3x3", 4))), (0,), r"layer 0 block 1: input index 4"),
    (_c((("conv_3x3", 0),)), (0,), r"layer 0 block 0 has 1 edges; need 2"),
    (_c((("conv_3x3", 0), ("conv_3x3", 1), ("skip_connect", 0))), (0,), r"block 0 has 3 edges; need 2"),
    ((CELL_A, CELL_B), (0,), r"'path' has 1 entries but there are 2 cells"),
    ((CELL_A,), (0, 0), r"'path' has 2 entries but there are 1 cells"),
    ((CELL_A, CELL_A[:2]), (0, 0), r"layer 1 has 2 blocks, layer 0 has 3"),
    ((CELL_A,), (3,), r"path\[0\] = 3 is not a width level \(0..2\)"),
    ((CELL_A,), (-1,), r"path\[0\] = -1 is not a width level"),
    ((CELL_A, CELL_A), (0, 2), r"path\[1\] = 2 jumps more than one level from 0"),
    ((CELL_A,), (2,), r"path\[0\] = 2 jumps more than one level from 0"),  # the stem is at level 0
    ((), (), r"'cells' is empty"),
    (((),), (0,), r"no blocks"),
    (_c((("conv_3x3",), ("conv_3x3", 1))), (0,), r"malformed structure"),
    ((CELL_A,), ("x",), r"malformed structure"),
])
def test_invalid_genotypes_rejected(cells, path, msg):
    with pytest.raises(GenotypeError, match=msg):
        Genotype(cells=cells, path=path)


def test_width_factors_empty_rejected():
    with pytest.raises(GenotypeError, match="width_factors"):
        Genotype(cells=(CELL_A,), path=(0,), width_factors=())


def test_from_json_errors():
    with pytest.raises(GenotypeError, match="not valid JSON"):
        Genotype.from_json("{cells: ")
    with pytest.raises(GenotypeError, match="expected a JSON object, got list"):
        Genotype.from_json("[1, 2]")
    d = _as_dict(_geno())
    with pytest.raises(GenotypeError, match=r"format is 'darts-genotype', expected 'hinas-genotype'"):
        Genotype.from_dict({**d, "format": "darts-genotype"})
    with pytest.raises(GenotypeError, match="version 99 is not supported"):
        Genotype.from_dict({**d, "version": 99})
    for key in ("cells", "path"):
        bad = {k: v for k, v in d.items() if k != key}
        with pytest.raises(GenotypeError, match=rf"missing key\(s\) \['{key}'\]"):
            Genotype.from_json(json.dumps(bad))
    with pytest.raises(GenotypeError, match=r"missing key\(s\) \['cells', 'path'\]"):
        Genotype.from_dict({"format": FORMAT})
    # bad content inside valid JSON
    d["cells"][1][0][0][0] = "none"
    with pytest.raises(GenotypeError, match="layer 1 block 0: unknown op 'none'"):
        Genotype.from_dict(d)


def test_from_dict_defaults():
    d = _as_dict(_geno())
    for k in ("format", "version", "width_factors"):
        del d[k]
    assert Genotype.from_dict(d) == _geno()


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(GenotypeError, match="genotype file not found: .*missing.json"):
        Genotype.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("not json at all")
    with pytest.raises(GenotypeError, match=r"bad\.json: genotype: not valid JSON"):
        Genotype.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "other", "cells": [], "path": []}))
    with pytest.raises(GenotypeError, match=r"wrong\.json: genotype: format is 'other'"):
        Genotype.load(wrong)
    with pytest.raises(GenotypeError, match="not found"):
        Genotype.load(tmp_path)  # a folder is not a genotype file


def test_genotype_is_frozen():
    g = _geno()
    with pytest.raises(Exception):
        g.path = (0, 0, 0)


def test_default_genotype():
    g = default_genotype(3, 4)
    assert g.layers == 3 and g.blocks == 4 and g.path == (0, 0, 0)
    assert g.width_factors == (1.0, 1.5, 2.0)
    cell = g.cells[0]
    assert cell[0] == (("conv_3x3", 1), ("skip_connect", 0))
    for i in range(1, 4):
        assert cell[i] == (("conv_3x3", i + 1), ("skip_connect", 1))
    assert all(c == cell for c in g.cells)
    assert set(g.ops()) == {"conv_3x3", "skip_connect"}
    assert default_genotype(1, 1, width_factors=(1.0, 2.0)).width_factors == (1.0, 2.0)
    assert Genotype.from_json(g.to_json()) == g


def test_edge_index_order():
    assert edges_per_cell(1) == 2 and edges_per_cell(4) == 14
    assert edge_index(3) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert len(edge_index(5)) == edges_per_cell(5)

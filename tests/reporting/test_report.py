"""report.py: per-language surviving parameters, density heatmaps, per-level summary, run report files."""

from __future__ import annotations

import json
import math

import pytest
from conftest import load_lslo, lslo_config

from lslo.reporting.report import (
    build_report,
    density_grid,
    per_level_summary,
    plot_density_heatmap,
    plot_parameters_per_language,
    summary_markdown,
    write_run_report,
)

# Tiny M2M-100 (conftest): d_model 16, ffn 32, 2 encoder + 2 decoder layers. Adapted (paper default):
# encoder q,k,v (16->16), fc1 (16->32), fc2 (32->16); decoder also cross_q,k,v (16->16).
N_MODULES = 2 * 5 + 2 * 8  # 26
SUM_D_IN = 2 * (3 * 16 + 16 + 32) + 2 * (6 * 16 + 16 + 32)  # 480
SUM_D_OUT = 2 * (3 * 16 + 32 + 16) + 2 * (6 * 16 + 32 + 16)  # 480
LANGS3 = [{"code": "en", "level": "high"}, {"code": "fr", "level": "high"}, {"code": "ha", "level": "low"}]


def png_info(path):
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        colors = rgb.getcolors(maxcolors=1 << 20)
        return rgb.size, len(colors)


@pytest.fixture(scope="module")
def pruned(m2m_dir):
    """en: component 1 of A cut everywhere; fr: all of B cut in encoder.0.q; ha: 8 rows of B cut in decoder fc2."""
    import torch

    model = load_lslo(m2m_dir, lslo_config(languages=LANGS3), randomize=False)
    with torch.no_grad():
        for m in model.lslo_modules().values():
            en, fr, ha = (m.languages.index(c) for c in ("en", "fr", "ha"))
            m.mask_A_of(en)[1, :] = False
            if (m.side, m.layer, m.position) == ("encoder", 0, "q"):
                m.mask_B_of(fr).fill_(False)
            if m.side == "decoder" and m.position == "fc2":
                m.mask_B_of(ha)[:8, :] = False
    return model


def test_numbers_equal_hand_counts(pruned):
    rep = build_report(pruned)
    base = pruned.base_parameter_count()
    langs = rep["languages"]
    # totals per language: sum over modules of r * (d_in + d_out) = 960 r
    assert [langs[c]["total"] for c in ("en", "fr", "ha")] == [1920, 1920, 7680]
    assert langs["en"]["surviving"] == SUM_D_IN + 2 * SUM_D_OUT == 1440
    assert langs["fr"]["surviving"] == 1920 - 16 * 2 == 1888
    assert langs["ha"]["surviving"] == 7680 - 2 * 8 * 8 == 7552
    assert langs["en"]["effective_rank_mean"] == 1 and langs["en"]["effective_rank_min"] == 1
    assert langs["fr"]["effective_rank_mean"] == pytest.approx((2 * (N_MODULES - 1) + 0) / N_MODULES)
    assert langs["fr"]["effective_rank_min"] == 0
    assert langs["ha"]["effective_rank_mean"] == 8
    assert [langs[c]["level"] for c in ("en", "fr", "ha")] == ["high", "high", "low"]
    assert langs["en"]["percent_of_base"] == pytest.approx(100 * 1440 / base)
    assert rep["total"]["surviving"] == 1440 + 1888 + 7552

    lv = per_level_summary(rep)
    assert list(lv) == ["high", "low"]
    assert lv["high"]["languages"] == ["en", "fr"]
    assert lv["high"]["surviving_mean"] == (1440 + 1888) / 2
    assert lv["high"]["effective_rank_mean"] == pytest.approx((1 + 50 / 26) / 2)
    assert lv["low"]["surviving_mean"] == 7552 and lv["low"]["effective_rank_mean"] == 8
    assert lv["high"]["percent_of_base_mean"] == pytest.approx(100 * 1664 / base)
    # levels can be overridden
    assert list(per_level_summary(rep, {"fr": "medium"})) == ["high", "medium", "low"]

    labels, cols, grid = density_grid(rep, "en")
    assert labels == ["enc 0", "enc 1", "dec 0", "dec 1"]
    assert cols == ["q", "k", "v", "fc1", "fc2", "cross_q", "cross_k", "cross_v"]
    assert grid[0][0] == 48 / 64  # en encoder.0.q: A 16 of 32 kept, B 32 of 32
    assert math.isnan(grid[0][5])  # no cross-attention in the encoder
    assert density_grid(rep, "fr")[2][0][0] == 32 / 64
    assert density_grid(rep, "fr")[2][0][1] == 1.0
    # pooled over languages at encoder.0.q: (48 + 32 + 256) / (64 + 64 + 256)
    assert density_grid(rep)[2][0][0] == 336 / 384
    # ha decoder fc2 (32 -> 16, rank 8): A 8 x 32 kept, 8 of 16 rows of B cut -> (256 + 64) / (256 + 128)
    assert density_grid(rep, "ha")[2][2][cols.index("fc2")] == 320 / 384


def test_write_run_report_files_and_summary(pruned, tmp_path):
    paths = write_run_report(tmp_path / "run", pruned)
    out = tmp_path / "run" / "report"
    for name in ("parameters.png", "density.png", "sparsity.json", "summary.md"):
        assert (out / name).is_file(), name
    for png in (paths["parameters"], paths["density"]):
        size, n_colors = png_info(png)
        assert png.stat().st_size > 10_000 and size[0] > 400 and size[1] > 300
        assert n_colors > 20  # bars / cells / text, not a blank canvas
    data = json.loads((out / "sparsity.json").read_text())
    assert data["languages"]["fr"]["surviving"] == 1888 and data["per_level"]["low"]["languages"] == ["ha"]

    base = pruned.base_parameter_count()
    md = (out / "summary.md").read_text()
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in ("en", "fr", "ha"):
            rows[cells[0]] = cells
    assert rows["en"] == ["en", "high", "2", "1.00", "1", "1,440", f"{100 * 1440 / base:.4f}", "0.750"]
    assert rows["fr"] == ["fr", "high", "2", f"{50 / 26:.2f}", "0", "1,888", f"{100 * 1888 / base:.4f}",
                          f"{1888 / 1920:.3f}"]
    assert rows["ha"] == ["ha", "low", "8", "8.00", "8", "7,552", f"{100 * 7552 / base:.4f}", f"{7552 / 7680:.3f}"]
    assert "| high | en fr | 1,664.0 |" in md
    assert "| **all** | | | | | 10,880 |" in md
    assert "High-resource languages keep" in md and "less than" in md


def test_shared_lora_and_no_adapters(m2m_dir, tmp_path):
    lora = load_lslo(m2m_dir, lslo_config(languages=LANGS3, shared_rank=4), randomize=False)
    paths = write_run_report(tmp_path / "lora", lora, per_language=False)
    data = json.loads(paths["sparsity"].read_text())
    assert list(data["languages"]) == ["shared"] and data["languages"]["shared"]["level"] == "shared"
    assert data["languages"]["shared"]["surviving"] == 960 * 4
    assert paths["density"].stat().st_size > 5_000

    none = load_lslo(m2m_dir, lslo_config(languages=LANGS3, encoder_positions=[], decoder_positions=[]),
                     randomize=False)
    paths = write_run_report(tmp_path / "none", none)
    assert paths["parameters"] is None and paths["density"] is None
    assert "No adapter parameters" in paths["summary"].read_text()
    with pytest.raises(ValueError, match="no adapter languages"):
        plot_parameters_per_language(build_report(none), tmp_path / "x.png")


def synthetic_report(n_layers=12):
    """A 12-language report shaped like M2M-100 615M (12+12 layers), built by hand."""
    levels = {"en": "high", "fr": "high", "it": "high", "de": "high", "nl": "medium", "zh": "medium",
              "ja": "medium", "ko": "medium", "oc": "low", "or": "low", "sd": "low", "wo": "low"}
    keys = [f"encoder.{i}.{p}" for i in range(n_layers) for p in ("q", "k", "v", "fc1", "fc2")]
    keys += [f"decoder.{i}.{p}" for i in range(n_layers)
             for p in ("q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2")]
    langs = {}
    for j, (code, level) in enumerate(levels.items()):
        dens = {k: ((i * 7 + j * 3) % 10) / 10 for i, k in enumerate(keys)}
        surv = 1000 * (j + 1)
        langs[code] = {"surviving": surv, "total": 10_000, "density": surv / 10_000, "percent_of_base": surv / 1e4,
                       "compact_params": 0, "effective_rank_mean": 1.5, "effective_rank_min": 1,
                       "rank": 8 if level == "low" else 2, "modules": len(keys), "density_by_position": dens,
                       "level": level}
    return {"base_param_count": 10_000_000, "languages": langs, "positions": {k: 0.5 for k in keys},
            "total": {"surviving": 78_000, "total": 120_000, "density": 0.65, "percent_of_base": 0.78,
                      "compact_params": 0}}


def test_twelve_language_plots_are_ordered_by_level(tmp_path):
    rep = synthetic_report()
    # input order shuffled: bars and panels still go high, medium, low
    order = ["wo", "en", "zh", "oc", "fr", "ja", "or", "it", "ko", "sd", "de", "nl"]
    rep["languages"] = {c: rep["languages"][c] for c in order}
    from lslo.reporting.report import ordered_languages

    assert ordered_languages(rep) == ["en", "fr", "it", "de", "zh", "ja", "ko", "nl", "wo", "oc", "or", "sd"]
    p = plot_parameters_per_language(rep, tmp_path / "p.png")
    h = plot_density_heatmap(rep, tmp_path / "d.png")
    assert png_info(p)[1] > 20 and png_info(h)[1] > 20
    (w, hgt), _ = png_info(h)
    assert w > 1000 and hgt > 1000  # 4 summary panels + 12 language panels of 24 x 8 cells
    lv = per_level_summary(rep)
    assert lv["low"]["surviving_mean"] == (9000 + 10000 + 11000 + 12000) / 4
    md = summary_markdown(rep)
    assert md.index("| en | high") < md.index("| zh | medium") < md.index("| wo | low")

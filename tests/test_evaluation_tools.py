"""tools/evaluate.py, tools/reencode.py, tools/export.py and the RD utilities, in-process."""

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

import tiny
from tfflowcomp import rd

sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "tools"))
import evaluate  # pylint: disable=g-import-not-at-top,wrong-import-position
import reencode  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture()
def folder(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  for i in range(2):
    Image.fromarray(tiny.smooth_image(24, 32, seed=i)).save(images / f"{i}.png")
  return images


def test_evaluate_writes_json_plot_and_table(folder, tmp_path, capsys):
  out = tmp_path / "rd"
  code = evaluate.main(["--model", tiny.TINY_MODEL_DIR, "--images", str(folder),
                        "--qualities", "0.2,0.6,1.0", "--codecs", "JPEG 4:2:0",
                        "--reference", "", "--output_dir", str(out)])
  assert code == 0
  result = json.loads((out / "rd.json").read_text())
  ours = result["curves"]["tfflowcomp"]
  assert len(ours["bpp"]) == 3 and ours["bpp"] == sorted(ours["bpp"])
  for quality, side_bpp in zip(ours["qualities"], ours["side_information_bpp"]):
    file_bpp = np.mean([bpp for bpp, _ in ours["per_image"][str(quality)]])
    assert 0 < side_bpp < file_bpp
  assert "JPEG 4:2:0" in result["curves"]
  assert (out / "rd.png").stat().st_size > 1000
  assert "BD-rate" in capsys.readouterr().out


def test_evaluate_reports_a_missing_folder(tmp_path, capsys):
  assert evaluate.main(["--images", str(tmp_path / "nope"), "--output_dir",
                        str(tmp_path)]) == 1
  assert "error" in capsys.readouterr().err


def test_reencode_study_runs_and_stable_mode_is_byte_identical(folder, tmp_path):
  out = tmp_path / "re"
  code = reencode.main(["--model", tiny.TINY_MODEL_DIR, "--images", str(folder), "--crop", "0",
                        "--generations", "4", "--qualities", "0.5", "--codecs", "JPEG",
                        "--output_dir", str(out)])
  assert code == 0
  summaries = {s["name"]: s for s in json.loads((out / "reencode.json").read_text())[
      "summaries"]}
  stable = summaries["tfflowcomp q=0.5 stable"]
  assert stable["byte_identical_from_generation_2"] == 1.0
  assert stable["drift_db"] == 0.0
  assert (out / "reencode.png").exists()


def test_reencode_summary_of_lossless_generations_has_zero_drift():
  run = dict(psnr=[float("inf")] * 3, identical=[False, True, True],
             changed_symbols=[None, 0.0, 0.0], bytes=[100, 100, 100], first_encode_seconds=1.0)
  summary = reencode.summarize("lossless", [run, run], pixels=64)
  assert summary["drift_db"] == 0.0 and summary["gen1_psnr"] == float("inf")
  lossy_later = dict(run, psnr=[float("inf"), 50.0, 50.0])
  assert reencode.summarize("x", [lossy_later], pixels=64)["drift_db"] == float("-inf")


def test_bd_rate_of_a_curve_against_itself_is_zero_and_halving_rate_is_minus_50():
  bpp = np.array([0.25, 0.5, 1.0, 2.0])
  psnr = np.array([28.0, 31.0, 34.5, 38.0])
  assert rd.bd_rate(bpp, psnr, bpp, psnr) == pytest.approx(0.0, abs=1e-9)
  assert rd.bd_rate(bpp, psnr, bpp / 2, psnr) == pytest.approx(-50.0, abs=1e-6)
  assert rd.psnr_at_bpp(bpp, psnr, 1.0) == pytest.approx(34.5)
  assert rd.psnr_at_bpp(bpp, psnr, 8.0) is None


def test_psnr_lead_finds_where_a_curve_is_behind():
  bpp = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
  anchor = np.array([25.0, 28.0, 31.0, 34.5, 38.0])
  # Behind by 0.4 dB at the lowest rate, level near 0.25 bpp, ahead above it.
  test = anchor + np.array([-0.4, 0.0, 0.2, 0.4, 0.6])
  lead = rd.psnr_lead(bpp, anchor, bpp, test)
  assert lead["min_db"] == pytest.approx(-0.4) and lead["min_at_bpp"] == pytest.approx(0.1)
  assert lead["max_db"] == pytest.approx(0.6) and lead["max_at_bpp"] == pytest.approx(2.0)
  [(low, high)] = lead["behind_bpp"]
  assert low == pytest.approx(0.1) and 0.2 < high <= 0.25
  ahead = rd.psnr_lead(bpp, anchor, bpp, anchor + 0.1)
  assert ahead["behind_bpp"] == [] and ahead["min_db"] == pytest.approx(0.1)
  # Curves only compared where both have points.
  assert rd.psnr_lead(bpp, anchor, bpp * 100, test) is None
  assert rd.psnr_lead(bpp[:3], anchor[:3], bpp[1:], test[1:])["min_at_bpp"] == pytest.approx(0.25)


def test_benchmarks_refuse_missing_and_empty_image_folders(tmp_path, capsys):
  from tfflowcomp import data  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "benchmarks"))
  import quantization as quantization_benchmark  # pylint: disable=g-import-not-at-top
  import tiling_cost  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="cannot read images from"):
    data.load_nonempty_folder(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="no images in"):
    data.load_nonempty_folder(str(tmp_path))
  Image.fromarray(tiny.smooth_image(8, 8)).save(tmp_path / "a.png")
  assert data.load_nonempty_folder(str(tmp_path))[0].shape == (8, 8, 3)
  empty = tmp_path / "empty"
  empty.mkdir()
  for benchmark in (quantization_benchmark, tiling_cost):
    assert benchmark.main(["--images", str(empty), "--model", tiny.TINY_MODEL_DIR]) == 1
    assert "error: no images in" in capsys.readouterr().err


def test_encoder_choices_benchmark_writes_real_rates_per_variant(tmp_path, capsys):
  sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "benchmarks"))
  import quantization as quantization_benchmark  # pylint: disable=g-import-not-at-top
  Image.fromarray(tiny.smooth_image(32, 48, seed=2)).save(tmp_path / "a.png")
  output = tmp_path / "out.json"
  argv = ["--images", str(tmp_path), "--model", tiny.TINY_MODEL_DIR, "--output", str(output),
          "--qualities", "0.3,0.6,0.9"]
  assert quantization_benchmark.main(argv + ["--variants", "inf/0,1/4"]) == 0
  result = json.loads(output.read_text())
  assert list(result["curves"]) == ["rounding side 0", "RDOQ x1 side 4"]
  assert result["bd_rate_vs_anchor"]["rounding side 0"] == pytest.approx(0.0, abs=1e-9)
  for curve in result["curves"].values():
    assert [p["quality"] for p in curve] == [0.3, 0.6, 0.9]
    assert all(p["bpp"] > 0 and p["psnr"] > 20 for p in curve)
  assert quantization_benchmark.main(argv + ["--variants", "1/-3"]) == 2
  assert "WEIGHT/ITERATIONS" in capsys.readouterr().err


def test_lossless_benchmark_checks_every_file_decodes_bit_exact(tmp_path, capsys):
  sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "benchmarks"))
  import lossless  # pylint: disable=g-import-not-at-top
  Image.fromarray(tiny.smooth_image(32, 48, seed=3)).save(tmp_path / "a.png")
  output = tmp_path / "out.json"
  assert lossless.main(["--images", str(tmp_path), "--model", tiny.TINY_MODEL_DIR,
                        "--output", str(output)]) == 0
  rows = json.loads(output.read_text())["codecs"]
  assert rows["PNG"]["exact_images"] == rows["WebP lossless"]["exact_images"] == 1
  flow = rows["tfflowcomp q=1 (tiny_model)"]  # A float flow: measured, not assumed, lossless.
  assert flow["images"] == 1 and flow["bpp"] > 0
  assert lossless.main(["--images", str(tmp_path / "missing"), "--model", ""]) == 1
  assert lossless.main(["--images", str(tmp_path), "--model", str(tmp_path / "no_model"),
                        "--output", str(output)]) == 1
  assert "error:" in capsys.readouterr().err

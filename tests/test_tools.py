"""tools/compress.py and tools/demo.py called in-process through main(argv)."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

import tiny
from tfflowcomp import bitstream

sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "tools"))
import compress  # pylint: disable=g-import-not-at-top,wrong-import-position
import demo  # pylint: disable=g-import-not-at-top,wrong-import-position

MODEL = tiny.TINY_MODEL_DIR


@pytest.fixture()
def png(tmp_path):
  path = tmp_path / "image.png"
  Image.fromarray(tiny.smooth_image(20, 28, seed=4)).save(path)
  return path


def _run(argv, capsys):
  code = compress.main([str(a) for a in argv])
  out, err = capsys.readouterr()
  return code, out, err


def test_compress_then_decompress(png, tmp_path, capsys):
  out = tmp_path / "image.tfc"
  code, stdout, _ = _run(["compress", png, out, "--model", MODEL, "--quality", "0.7"], capsys)
  assert code == 0 and out.exists()
  assert "bpp" in stdout and "PSNR" in stdout
  decoded = tmp_path / "decoded.png"
  code, _, _ = _run(["decompress", out, decoded, "--model", MODEL], capsys)
  assert code == 0
  assert np.array(Image.open(decoded)).shape == (20, 28, 3)


def test_decompress_finds_the_model_from_the_fingerprint(png, tmp_path, capsys, monkeypatch):
  out = tmp_path / "image.tfc"
  assert _run(["compress", png, out, "--model", MODEL], capsys)[0] == 0
  monkeypatch.setattr(compress, "SAVEDMODELS_DIR", os.path.dirname(MODEL))
  code, _, _ = _run(["decompress", out, tmp_path / "d.png"], capsys)
  assert code == 0


def test_existing_output_is_not_overwritten_without_force(png, tmp_path, capsys):
  out = tmp_path / "image.tfc"
  out.write_bytes(b"precious")
  code, stdout, err = _run(["compress", png, out, "--model", MODEL], capsys)
  assert code == 1 and "exists" in err and out.read_bytes() == b"precious"
  assert "bpp" not in stdout  # Refused before any encoding work.
  assert _run(["compress", png, out, "--model", MODEL, "--force"], capsys)[0] == 0
  assert out.read_bytes() != b"precious"


def test_default_output_name_and_roundtrip_and_inspect(png, tmp_path, capsys):
  assert _run(["compress", png, "--model", MODEL], capsys)[0] == 0
  tfc = tmp_path / "image.tfc"
  assert tfc.exists()
  code, out, _ = _run(["inspect", tfc], capsys)
  assert code == 0 and "28x20" in out and "fingerprint" in out
  code, out, _ = _run(["roundtrip", png, "--model", MODEL], capsys)
  assert code == 0 and "PSNR" in out
  assert sorted(os.listdir(tmp_path)) == ["image.png", "image.tfc"]


def test_batch_mode_over_a_folder(tmp_path, capsys):
  src = tmp_path / "src"
  src.mkdir()
  for i in range(3):
    Image.fromarray(tiny.smooth_image(9 + i, 13, seed=i)).save(src / f"{i}.png")
  code, out, _ = _run(["compress", src, tmp_path / "out", "--model", MODEL], capsys)
  assert code == 0 and "[3/3]" in out
  assert sorted(os.listdir(tmp_path / "out")) == ["0.tfc", "1.tfc", "2.tfc"]
  code, _, _ = _run(["decompress", tmp_path / "out", tmp_path / "dec", "--model", MODEL],
                    capsys)
  assert code == 0 and sorted(os.listdir(tmp_path / "dec")) == ["0.png", "1.png", "2.png"]


def test_target_bpp_search(png, tmp_path, capsys):
  code, out, err = _run(["roundtrip", png, "--model", MODEL, "--target_bpp", "6"], capsys)
  assert code == 0
  bpp = float(out.split(" bpp")[0].split()[-1])
  assert abs(bpp - 6) <= 0.18 or "not reachable" in err


@pytest.mark.parametrize("content,message", [
    (b"", "wrong magic"), (b"hello world, not a codec file", "wrong magic"),
    (b"TFFC" + bytes([bitstream.VERSION, 0]), "truncated"),
    (b"TFFC\x09" + b"\0" * 50, "version"),
])
def test_bad_bitstreams_give_one_line_errors(tmp_path, capsys, content, message):
  bad = tmp_path / "bad.tfc"
  bad.write_bytes(content)
  code, _, err = _run(["decompress", bad, tmp_path / "x.png", "--model", MODEL], capsys)
  assert code == 1 and message in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "x.png").exists()


def test_truncated_real_file_and_unknown_fingerprint(png, tmp_path, capsys, monkeypatch):
  out = tmp_path / "image.tfc"
  _run(["compress", png, out, "--model", MODEL], capsys)
  data = out.read_bytes()
  (tmp_path / "cut.tfc").write_bytes(data[:-7])
  code, _, err = _run(["decompress", tmp_path / "cut.tfc", "--model", MODEL], capsys)
  assert code == 1 and "truncated" in err
  monkeypatch.setattr(compress, "SAVEDMODELS_DIR", str(tmp_path))
  code, _, err = _run(["decompress", out, tmp_path / "y.png"], capsys)
  assert code == 1 and "unknown model fingerprint" in err


@pytest.mark.parametrize("make", ["missing", "text", "truncated_png", "directory"])
def test_bad_images_give_one_line_errors(tmp_path, capsys, make, png):
  path = tmp_path / "input.png"
  if make == "text":
    path.write_text("not an image")
  elif make == "truncated_png":
    path.write_bytes(png.read_bytes()[:60])
  elif make == "directory":
    path.mkdir()
  code, _, err = _run(["compress", path, tmp_path / "o.tfc", "--model", MODEL], capsys)
  assert code == 1 and err.startswith("error:") and "Traceback" not in err
  assert not (tmp_path / "o.tfc").exists()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_other_image_modes_are_converted(tmp_path, capsys, mode):
  rgb = Image.fromarray(tiny.smooth_image(10, 12))
  if mode == "I;16":
    image = Image.fromarray((np.array(rgb.convert("L")).astype(np.uint16) * 257))
  else:
    image = rgb.convert(mode)
  path = tmp_path / "in.png"
  image.save(path)
  code, _, _ = _run(["roundtrip", path, "--model", MODEL], capsys)
  assert code == 0


@pytest.mark.parametrize("argv", [[], ["compress"], ["compress", "x", "--quality", "2"],
                                  ["compress", "x", "--quality", "0.5", "--target_bpp", "1"],
                                  ["explode", "x"], ["compress", "x", "--target_bpp", "-1"]])
def test_wrong_flags_exit_with_usage_error(argv, capsys):
  with pytest.raises(SystemExit) as raised:
    compress.main(argv)
  assert raised.value.code == 2


def test_demo_runs_on_the_tiny_model(png, tmp_path, capsys):
  code = demo.main(["--image", str(png), "--model", MODEL, "--qualities", "0.2,0.9",
                    "--out_dir", str(tmp_path / "demo")])
  out = capsys.readouterr().out
  assert code == 0 and "PSNR" in out
  assert sorted(os.listdir(tmp_path / "demo")) == ["q0.20.png", "q0.20.tfc", "q0.90.png",
                                                   "q0.90.tfc"]


def test_tiled_compress_inspect_and_decompress(tmp_path, capsys):
  image = tiny.smooth_image(260, 300, seed=9)
  source = tmp_path / "large.png"
  Image.fromarray(image).save(source)
  out = tmp_path / "large.tfc"
  code, _, _ = _run(["compress", source, out, "--model", MODEL, "--tile_side", "256"], capsys)
  assert code == 0
  code, stdout, _ = _run(["inspect", out], capsys)
  assert code == 0 and "tiles: 4 of at most 256x256" in stdout
  decoded = tmp_path / "large_decoded.png"
  assert _run(["decompress", out, decoded, "--model", MODEL], capsys)[0] == 0
  assert np.array(Image.open(decoded)).shape == image.shape
  with pytest.raises(SystemExit) as exit_info:
    compress.main(["compress", str(source), str(out), "--tile_side", "100"])
  assert exit_info.value.code == 2
  assert "multiple of 64" in capsys.readouterr().err


def test_stable_budget_matches_the_library_default():
  # compress.py keeps its own copy to start without TensorFlow; the two must not drift apart.
  from tfflowcomp import stable_search  # pylint: disable=g-import-not-at-top
  assert compress.STABLE_ITERATIONS == stable_search.DEFAULT_ITERATIONS


def test_export_tool_defaults_match_the_library():
  # tools/export.py keeps its own copies to parse flags before loading TensorFlow.
  import subprocess  # pylint: disable=g-import-not-at-top
  from tfflowcomp import side_refinement  # pylint: disable=g-import-not-at-top
  tool = os.path.join(tiny.TESTDATA, "..", "..", "tools", "export.py")
  result = subprocess.run([sys.executable, tool, "--helpshort"], capture_output=True, text=True,
                          timeout=120)
  help_text = " ".join(result.stdout.split())
  assert f"(default: '{side_refinement.DEFAULT_ITERATIONS}')" in help_text.split(
      "--side_iterations")[1].split("--")[0]


def test_stable_files_re_encode_to_the_same_bytes(png, tmp_path, capsys):
  first, decoded, second = tmp_path / "1.tfc", tmp_path / "1.png", tmp_path / "2.tfc"
  code, _, err = _run(["compress", png, first, "--model", MODEL, "--quality", "0.5", "--stable"],
                      capsys)
  assert code == 0 and "fixed point" not in err
  assert _run(["decompress", first, decoded, "--model", MODEL], capsys)[0] == 0
  code, _, _ = _run(["compress", decoded, second, "--model", MODEL, "--quality", "0.5",
                     "--stable"], capsys)
  assert code == 0 and second.read_bytes() == first.read_bytes()


def test_stable_mode_says_when_it_found_no_fixed_point(png, tmp_path, capsys, monkeypatch):
  # One round is too few to reach a fixed point from this (undecoded) image at this quality.
  monkeypatch.setattr(compress, "STABLE_ITERATIONS", 1)
  code, _, err = _run(["roundtrip", png, "--model", MODEL, "--quality", "0.9", "--stable"],
                      capsys)
  assert code == 0 and "no re-encoding fixed point or cycle within 1 iterations" in err

"""Serving: the SavedModel in a process without tfflowcomp, and the local REST server."""

import base64
import concurrent.futures
import io
import json
import os
import resource
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import tiny
from tfflowcomp import serving

sys.path.insert(0, os.path.join(tiny.TESTDATA, "..", "..", "tools"))
import serve_client  # pylint: disable=g-import-not-at-top,wrong-import-position

MODEL_NAME = "tiny"

FRESH_PROCESS = r"""
import sys, numpy as np, tensorflow as tf
tf.load_op_library(sys.argv[2])  # TFC's kernels only: no tfflowcomp, no tensorflow_compression.
assert not any(m.startswith(("tfflowcomp", "tensorflow_compression")) for m in sys.modules)
model = tf.saved_model.load(sys.argv[1])
image = np.load(sys.argv[3])
data = model.signatures["compress"](image=tf.constant(image), quality=tf.constant(0.5))
decoded = model.signatures["decompress"](bitstream=data["bitstream_bytes"])["image"].numpy()
sys.stdout.buffer.write(data["bitstream_bytes"].numpy())
np.save(sys.argv[4], decoded)
"""


def test_saved_model_works_in_a_process_that_never_imports_tfflowcomp(saved_codec, tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec("tensorflow_compression")
  library = os.path.join(os.path.dirname(spec.origin), "cc", "libtensorflow_compression.so")
  image = tiny.smooth_image(21, 30, seed=9)
  np.save(tmp_path / "image.npy", image)
  env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
      [sys.executable, "-c", FRESH_PROCESS, os.path.join(tiny.TINY_MODEL_DIR, "1"), library,
       str(tmp_path / "image.npy"), str(tmp_path / "decoded.npy")],
      capture_output=True, timeout=300, env=env, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr.decode()[-2000:]
  assert result.stdout == saved_codec.compress(image, 0.5)
  np.testing.assert_array_equal(np.load(tmp_path / "decoded.npy"),
                                saved_codec.decompress(result.stdout))


@pytest.fixture(scope="module")
def server():
  local = serving.LocalServer({MODEL_NAME: tiny.TINY_MODEL_DIR}).start()
  yield local
  local.stop()


def _post(server, path, payload, raw=None):
  data = raw if raw is not None else json.dumps(payload).encode()
  request = urllib.request.Request(server.url + path, data=data,
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=120) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as error:
    return error.code, json.loads(error.read())


def _png(image):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  return buffer.getvalue()


def test_rest_compress_and_decompress_match_the_python_api(server, saved_codec):
  image = tiny.smooth_image(19, 26, seed=2)
  status, body = _post(server, f"/v1/models/{MODEL_NAME}:predict", {
      "signature_name": "compress", "inputs": {"image": image.tolist(), "quality": 0.5}})
  assert status == 200
  data = base64.b64decode(body["outputs"]["bitstream_bytes"]["b64"])
  assert data == saved_codec.compress(image, 0.5)
  status, body = _post(server, f"/v1/models/{MODEL_NAME}/versions/1:predict", {
      "signature_name": "decompress_png",
      "instances": [{"bitstream": {"b64": base64.b64encode(data).decode()}}]})
  assert status == 200
  png = base64.b64decode(body["predictions"][0]["png_bytes"]["b64"])
  np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(png))),
                                saved_codec.decompress(data))


def test_status_and_metadata(server):
  with urllib.request.urlopen(f"{server.url}/v1/models/{MODEL_NAME}", timeout=60) as response:
    assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
  with urllib.request.urlopen(f"{server.url}/v1/models/{MODEL_NAME}/metadata",
                              timeout=60) as response:
    signatures = json.loads(response.read())["metadata"]["signature_def"]
  assert {"compress", "decompress", "serving_default", "compress_encoded",
          "decompress_png"} <= set(signatures)


@pytest.mark.parametrize("path,payload,raw,status", [
    ("/v1/models/nope:predict", {"inputs": {}}, None, 404),
    ("/v1/models/tiny/versions/7:predict", {"inputs": {}}, None, 404),
    ("/v1/models/tiny:predict", None, b"{not json", 400),
    ("/v1/models/tiny:predict", {"signature_name": "nope", "inputs": {}}, None, 404),
    ("/v1/models/tiny:predict", {"signature_name": "compress", "inputs": {"image": 1}}, None,
     400),
    ("/v1/models/tiny:predict", {"signature_name": "compress",
                                 "inputs": {"image": [[[300, 0, 0]]], "quality": 0.5}}, None,
     400),
    ("/v1/models/tiny:predict", {"signature_name": "compress",
                                 "inputs": {"image": [[[1, 2, 3]]], "quality": 7.0}}, None,
     400),
    ("/v1/models/tiny:predict", {"signature_name": "decompress",
                                 "inputs": {"bitstream": {"b64": "VEZGQwEA"}}}, None, 400),
    ("/v1/models/tiny:predict", {"signature_name": "decompress",
                                 "inputs": {"bitstream": {"b64": "***"}}}, None, 400),
    ("/v1/models/tiny:predict", {"signature_name": "compress_encoded",
                                 "inputs": {"encoded_image": {"b64": "aGVsbG8="},
                                            "quality": 0.5}}, None, 400),
])
def test_bad_requests_get_http_errors(server, path, payload, raw, status):
  code, body = _post(server, path, payload, raw)
  assert code == status and body["error"]


def test_oversized_body_is_refused(server, monkeypatch):
  monkeypatch.setattr(serving, "MAX_BODY_BYTES", 1000)
  code, body = _post(server, "/v1/models/tiny:predict", None, raw=b" " * 5000)
  assert code == 413 and "body" in body["error"]


@pytest.mark.slow
def test_concurrent_clients_get_correct_answers_with_bounded_memory(server, saved_codec,
                                                                    tmp_path):
  images = [tiny.smooth_image(16 + i, 24, seed=i) for i in range(8)]
  expected = [saved_codec.compress(image, 0.4) for image in images]
  for i, image in enumerate(images):
    (tmp_path / f"{i}.png").write_bytes(_png(image))

  def client(index):
    errors = 0
    for request in range(20):
      out = tmp_path / f"{index}-{request}.tfc"
      code = serve_client.main(["compress", str(tmp_path / f"{index}.png"), str(out),
                                "--quality", "0.4", "--server", server.url, "--model",
                                MODEL_NAME, "--force"])
      errors += code != 0 or out.read_bytes() != expected[index]
    return errors

  def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

  client(0)  # Warm-up (graph tracing) before measuring memory.
  before = rss_mb()
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    errors = sum(pool.map(client, range(8)))
  assert errors == 0
  assert rss_mb() - before < 500


def test_grpc_client_and_server_round_trip(server, saved_codec, tmp_path):
  grpc_server, port = serving.start_grpc_server(server.registry)
  try:
    image = tiny.smooth_image(15, 22, seed=8)
    (tmp_path / "in.png").write_bytes(_png(image))
    common = ["--grpc", f"127.0.0.1:{port}", "--model", MODEL_NAME]
    assert serve_client.main(["compress", str(tmp_path / "in.png"), str(tmp_path / "a.tfc"),
                              "--quality", "0.6"] + common) == 0
    data = (tmp_path / "a.tfc").read_bytes()
    assert data == saved_codec.compress(image, 0.6)
    assert serve_client.main(["decompress", str(tmp_path / "a.tfc"), str(tmp_path / "a.png")]
                             + common) == 0
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "a.png")),
                                  saved_codec.decompress(data))
    (tmp_path / "bad.tfc").write_bytes(b"TFFC garbage")
    assert serve_client.main(["decompress", str(tmp_path / "bad.tfc"), str(tmp_path / "b.png")]
                             + common) == 1
  finally:
    grpc_server.stop(None)

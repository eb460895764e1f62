"""A local server that speaks TF Serving's REST API for tfflowcomp SavedModels.

A stock `tensorflow_model_server` cannot load tensorflow-compression's range-coding ops (they must
be linked into the server at build time; see docs/serving.md), and no server binary can be
installed on the development machines. This module serves the same SavedModels, with the same
request and response format, from Python:

  GET  /v1/models/<name>                               -> version status
  GET  /v1/models/<name>/metadata                      -> signature names, inputs, outputs
  POST /v1/models/<name>[/versions/<v>]:predict        -> {"signature_name": ..., "inputs": {...}}
                                                          or {"instances": [{...}]}

Binary inputs are sent as {"b64": "..."}; outputs whose name ends in `_bytes` come back as
{"b64": "..."} (TF Serving's convention). Errors are JSON {"error": "..."} with HTTP 400 (bad
request or rejected data), 404 (unknown model/version/signature), 413 (body too large).
"""

import base64
import json
import os
import re
import threading
from http import server
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_compression  # pylint: disable=unused-import  (registers TFC ops)

MAX_BODY_BYTES = 64 << 20
_PREDICT = re.compile(r"^/v1/models/([\w.-]+)(?:/versions/(\d+))?:predict$")
_STATUS = re.compile(r"^/v1/models/([\w.-]+)(?:/versions/(\d+))?(/metadata)?$")


class RequestError(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


class ModelRegistry:
  """Loads `<name>/<version>/` SavedModels (TF Serving layout) and runs their signatures."""

  def __init__(self, models: Dict[str, str]):
    self._models: Dict[str, Dict[int, object]] = {}
    for name, base_path in models.items():
      versions = sorted(int(d) for d in os.listdir(base_path) if d.isdigit())
      if not versions:
        raise FileNotFoundError(f"model {name}: no numbered versions in {base_path}.")
      self._models[name] = {v: tf.saved_model.load(os.path.join(base_path, str(v)))
                            for v in versions}

  def get(self, name: str, version: Optional[int]):
    if name not in self._models:
      raise RequestError(404, f"Servable not found for request: Latest({name})")
    versions = self._models[name]
    if version is None:
      version = max(versions)
    if version not in versions:
      raise RequestError(404, f"Servable not found for request: Specific({name}, {version})")
    return version, versions[version]

  def status(self, name: str):
    self.get(name, None)
    return {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK",
                                                             "error_message": ""}}
        for v in sorted(self._models[name], reverse=True)]}

  def metadata(self, name: str, version: Optional[int]):
    version, module = self.get(name, version)
    signatures = {}
    for key, fn in module.signatures.items():
      inputs = {k: dict(dtype=v.dtype.name, shape=v.shape.as_list())
                for k, v in fn.structured_input_signature[1].items()}
      outputs = {k: dict(dtype=v.dtype.name, shape=v.shape.as_list())
                 for k, v in fn.structured_outputs.items()}
      signatures[key] = dict(inputs=inputs, outputs=outputs)
    return {"model_spec": {"name": name, "version": str(version)},
            "metadata": {"signature_def": signatures}}


def _decode_value(value, spec: tf.TensorSpec):
  if spec.dtype == tf.string:
    if isinstance(value, dict) and set(value) == {"b64"}:
      try:
        return tf.constant(base64.b64decode(value["b64"], validate=True))
      except (ValueError, TypeError) as error:
        raise RequestError(400, f"invalid base64: {error}") from None
    if isinstance(value, str):
      return tf.constant(value.encode())
    raise RequestError(400, "binary inputs must be sent as {\"b64\": \"...\"}")
  try:
    array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
  except (ValueError, TypeError, OverflowError) as error:
    raise RequestError(400, f"cannot convert input to {spec.dtype.name}: {error}") from None
  if spec.dtype == tf.uint8 and not np.array_equal(array, np.asarray(value)):
    raise RequestError(400, "uint8 input values must be integers in 0..255")
  if not spec.shape.is_compatible_with(array.shape):
    raise RequestError(400, f"input shape {list(array.shape)} does not match "
                            f"{spec.shape.as_list()}")
  return tf.constant(array)


def _encode_output(name: str, tensor: tf.Tensor):
  value = tensor.numpy()
  if name.endswith("_bytes"):
    return {"b64": base64.b64encode(value).decode("ascii")}
  return value.tolist()


def predict(registry: ModelRegistry, name: str, version: Optional[int], body: dict):
  """Runs one TF Serving REST predict request; returns the JSON response dict."""
  if not isinstance(body, dict):
    raise RequestError(400, "request body must be a JSON object")
  _, module = registry.get(name, version)
  signature_name = body.get("signature_name", "serving_default")
  if signature_name not in module.signatures:
    raise RequestError(404, f"signature {signature_name!r} not found; available: "
                            f"{', '.join(sorted(module.signatures))}")
  fn = module.signatures[signature_name]
  specs = fn.structured_input_signature[1]
  row_format = "instances" in body
  if row_format == ("inputs" in body):
    raise RequestError(400, "the body needs exactly one of 'instances' and 'inputs'")
  if row_format:
    instances = body["instances"]
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(
        instances[0], dict):
      raise RequestError(400, "'instances' must be a list with one object (the signatures "
                              "take one image or one bitstream per call)")
    raw_inputs = instances[0]
  else:
    raw_inputs = body["inputs"]
    if not isinstance(raw_inputs, dict):
      raise RequestError(400, "'inputs' must be an object of named inputs")
  if set(raw_inputs) != set(specs):
    raise RequestError(400, f"expected inputs {sorted(specs)}, got {sorted(raw_inputs)}")
  inputs = {k: _decode_value(raw_inputs[k], specs[k]) for k in specs}
  try:
    outputs = fn(**inputs)
  except tf.errors.InvalidArgumentError as error:
    raise RequestError(400, error.message.strip().splitlines()[0]) from None
  encoded = {k: _encode_output(k, v) for k, v in outputs.items()}
  return {"predictions": [encoded]} if row_format else {"outputs": encoded}


def make_handler(registry: ModelRegistry):
  """An HTTP request handler class bound to `registry`."""

  class Handler(server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # Quiet by default.
      pass

    def _reply(self, status: int, payload: dict):
      data = json.dumps(payload).encode()
      self.send_response(status)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def _handle(self, fn):
      try:
        status, payload = fn()
      except RequestError as error:
        status, payload = error.status, {"error": str(error)}
      except Exception as error:  # pylint: disable=broad-except
        status, payload = 500, {"error": f"internal error: {type(error).__name__}"}
      self._reply(status, payload)

    def do_GET(self):  # pylint: disable=invalid-name
      def run() -> Tuple[int, dict]:
        match = _STATUS.match(self.path)
        if not match:
          raise RequestError(404, f"unknown path {self.path}")
        name, version, metadata = match.groups()
        version = int(version) if version else None
        if metadata:
          return 200, registry.metadata(name, version)
        return 200, registry.status(name)
      self._handle(run)

    def do_POST(self):  # pylint: disable=invalid-name
      def run() -> Tuple[int, dict]:
        match = _PREDICT.match(self.path)
        if not match:
          raise RequestError(404, f"unknown path {self.path}")
        try:
          length = int(self.headers.get("Content-Length", ""))
        except ValueError:
          raise RequestError(411, "Content-Length required") from None
        if length < 0 or length > MAX_BODY_BYTES:
          self.close_connection = True
          raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length)
        try:
          body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
          raise RequestError(400, f"body is not valid JSON: {error}") from None
        name, version = match.group(1), match.group(2)
        return 200, predict(registry, name, int(version) if version else None, body)
      self._handle(run)

  return Handler


class LocalServer:
  """Runs the REST server in a background thread (for tests and `tools/serve_local.py`)."""

  def __init__(self, models: Dict[str, str], host: str = "127.0.0.1", port: int = 0):
    self.registry = ModelRegistry(models)
    self.httpd = server.ThreadingHTTPServer((host, port), make_handler(self.registry))
    self.httpd.daemon_threads = True
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

  @property
  def url(self) -> str:
    host, port = self.httpd.server_address[:2]
    return f"http://{host}:{port}"

  def start(self) -> "LocalServer":
    self.thread.start()
    return self

  def stop(self) -> None:
    self.httpd.shutdown()
    self.httpd.server_close()


def start_grpc_server(registry: ModelRegistry, port: int = 0, host: str = "127.0.0.1"):
  """Serves TF Serving's gRPC `PredictionService.Predict` for `registry`.

  Returns `(server, port)`; stop with `server.stop(None)`. Needs `tensorflow-serving-api`.
  """
  from concurrent import futures  # pylint: disable=g-import-not-at-top
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top

  class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):

    def Predict(self, request, context):  # pylint: disable=invalid-name
      name = request.model_spec.name
      version = request.model_spec.version.value if request.model_spec.HasField(
          "version") else None
      try:
        version, module = registry.get(name, version)
        signature = request.model_spec.signature_name or "serving_default"
        if signature not in module.signatures:
          raise RequestError(404, f"signature {signature!r} not found")
        fn = module.signatures[signature]
        specs = fn.structured_input_signature[1]
        if set(request.inputs) != set(specs):
          raise RequestError(400, f"expected inputs {sorted(specs)}, got "
                                  f"{sorted(request.inputs)}")
        inputs = {}
        for key, spec in specs.items():
          value = tf.make_ndarray(request.inputs[key])
          if not spec.shape.is_compatible_with(value.shape):
            raise RequestError(400, f"input {key} has shape {list(value.shape)}")
          inputs[key] = tf.constant(value, dtype=spec.dtype)
        outputs = fn(**inputs)
      except RequestError as error:
        context.abort(grpc.StatusCode.NOT_FOUND if error.status == 404 else
                      grpc.StatusCode.INVALID_ARGUMENT, str(error))
      except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
      response = predict_pb2.PredictResponse()
      response.model_spec.name = name
      response.model_spec.version.value = version
      response.model_spec.signature_name = signature
      for key, tensor in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
      return response

  grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[
      ("grpc.max_receive_message_length", MAX_BODY_BYTES),
      ("grpc.max_send_message_length", 1 << 28)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), grpc_server)
  bound = grpc_server.add_insecure_port(f"{host}:{port}")
  grpc_server.start()
  return grpc_server, bound


def parse_models_config(path: str) -> Dict[str, str]:
  """Reads the `name` and `base_path` entries of a TF Serving models.config (text proto)."""
  with open(path) as f:
    text = f.read()
  names = re.findall(r'name:\s*"([^"]+)"', text)
  paths = re.findall(r'base_path:\s*"([^"]+)"', text)
  if not names or len(names) != len(paths):
    raise ValueError(f"{path}: expected pairs of name/base_path entries.")
  base = os.path.dirname(os.path.abspath(path))

  def resolve(model_path):
    # Relative paths are relative to the config; a container path such as /models/<name> that
    # does not exist here falls back to <config dir>/<name>.
    if not os.path.isabs(model_path):
      return os.path.normpath(os.path.join(base, model_path))
    if os.path.isdir(model_path):
      return model_path
    return os.path.join(base, os.path.basename(os.path.normpath(model_path)))

  return {n: resolve(p) for n, p in zip(names, paths)}

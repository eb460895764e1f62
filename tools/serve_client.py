"""Compresses/decompresses files through a TF Serving endpoint (REST, or gRPC).

  python tools/serve_client.py compress IN.png OUT.tfc --quality 0.6 [--server URL] [--model NAME]
  python tools/serve_client.py decompress IN.tfc OUT.png [--server URL] [--model NAME]
  python tools/serve_client.py ... --grpc localhost:8500      (needs tensorflow-serving-api)

REST: POST {server}/v1/models/{model}:predict with signature `compress_encoded` (the image file's
bytes, base64) or `decompress_png`. Works against tensorflow_model_server (with TFC ops linked)
and tools/serve_local.py alike.
"""

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)


class ClientError(Exception):
  pass


def rest_predict(server: str, model: str, signature: str, inputs: dict, timeout: float = 300):
  body = json.dumps({"signature_name": signature, "inputs": inputs}).encode()
  request = urllib.request.Request(f"{server.rstrip('/')}/v1/models/{model}:predict", data=body,
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return json.loads(response.read())["outputs"]
  except urllib.error.HTTPError as error:
    try:
      message = json.loads(error.read()).get("error", "")
    except ValueError:
      message = ""
    raise ClientError(f"server answered {error.code}: {message}") from None
  except urllib.error.URLError as error:
    raise ClientError(f"cannot reach {server}: {error.reason}") from None


def grpc_predict(address: str, model: str, signature: str, inputs: dict, timeout: float = 300):
  import grpc  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  for key, value in inputs.items():
    if isinstance(value, dict):
      value = base64.b64decode(value["b64"])
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 1 << 28),
                                               ("grpc.max_send_message_length", 1 << 28)]) as ch:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
    try:
      response = stub.Predict(request, timeout)
    except grpc.RpcError as error:
      raise ClientError(f"gRPC error {error.code().name}: {error.details()}") from None
  outputs = {}
  for key, proto in response.outputs.items():
    value = tf.make_ndarray(proto)
    outputs[key] = {"b64": base64.b64encode(value.item()).decode()} if key.endswith(
        "_bytes") else value.tolist()
  return outputs


def _write(path, data, force):
  if os.path.exists(path) and not force:
    raise ClientError(f"{path} exists (use --force).")
  tmp = f"{path}.partial-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("command", choices=["compress", "decompress"])
  parser.add_argument("input")
  parser.add_argument("output")
  parser.add_argument("--quality", type=float, default=0.5)
  parser.add_argument("--server", default="http://127.0.0.1:8501")
  parser.add_argument("--grpc", default=None, help="host:port of a gRPC endpoint instead")
  parser.add_argument("--model", default="tfflowcomp_base")
  parser.add_argument("--force", action="store_true")
  args = parser.parse_args(argv)
  call = ((lambda sig, inputs: grpc_predict(args.grpc, args.model, sig, inputs)) if args.grpc
          else (lambda sig, inputs: rest_predict(args.server, args.model, sig, inputs)))
  try:
    if not 0.0 <= args.quality <= 1.0:
      raise ClientError("--quality must be in [0, 1].")
    with open(args.input, "rb") as f:
      payload = {"b64": base64.b64encode(f.read()).decode()}
    if args.command == "compress":
      outputs = call("compress_encoded", {"encoded_image": payload, "quality": args.quality})
      data = base64.b64decode(outputs["bitstream_bytes"]["b64"])
    else:
      outputs = call("decompress_png", {"bitstream": payload})
      data = base64.b64decode(outputs["png_bytes"]["b64"])
    _write(args.output, data, args.force)
  except (ClientError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  print(f"{args.command}: {args.input} -> {args.output} ({len(data)} bytes)")
  return 0


if __name__ == "__main__":
  sys.exit(main())

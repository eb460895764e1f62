"""Serves tfflowcomp SavedModels over TF Serving's REST API on this machine (Python server).

  python tools/serve_local.py [--models_config savedmodels/models.config] [--port 8501]
  python tools/serve_local.py --model tfflowcomp_base=savedmodels/tfflowcomp_base

Binds to 127.0.0.1 only. Stop with Ctrl-C. See docs/serving.md for the request format and for
running the real tensorflow_model_server.
"""

import argparse
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models_config", default=os.path.join(REPO_ROOT, "savedmodels",
                                                              "models.config"))
  parser.add_argument("--model", action="append", default=[],
                      help="NAME=PATH (repeatable); replaces --models_config")
  parser.add_argument("--port", type=int, default=8501, help="REST port")
  parser.add_argument("--grpc_port", type=int, default=8500, help="gRPC port (0 = none)")
  args = parser.parse_args(argv)
  from tfflowcomp import serving  # pylint: disable=g-import-not-at-top
  try:
    if args.model:
      models = dict(item.split("=", 1) for item in args.model)
    else:
      models = serving.parse_models_config(args.models_config)
    local = serving.LocalServer(models, port=args.port)
  except (ValueError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  if args.grpc_port:
    _, grpc_port = serving.start_grpc_server(local.registry, args.grpc_port)
    print(f"gRPC PredictionService on 127.0.0.1:{grpc_port}", flush=True)
  print(f"serving {', '.join(models)} at {local.url}/v1/models/<name>:predict", flush=True)
  try:
    local.httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    local.httpd.server_close()
  return 0


if __name__ == "__main__":
  sys.exit(main())

#!/usr/bin/env bash
# Regenerate inference/serve/proto/*_pb2.py (and their .pyi stubs, for mypy) from the
# committed .proto files (Triton's inference.GRPCInferenceService; source, commit and
# license in inference/serve/proto/__init__.py). Only the message classes are generated:
# inference/serve/grpc_server.py registers the methods itself, so no *_pb2_grpc.py.
#
# grpcio-tools is pinned (serve-test extra): 1.72.1 writes code for protobuf 6.30.0, the
# oldest runtime the generated files then accept (newer runtimes, 7.x included, load it).
# protoc's imports are top-level ("import model_config_pb2"); the sed below makes them
# relative to the package. Run from anywhere: bash scripts/gen_grpc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=inference/serve/proto
.venv/bin/python -m grpc_tools.protoc -I "$out" --python_out="$out" --pyi_out="$out" \
    "$out/grpc_service.proto" "$out/model_config.proto"
sed -i 's/^import model_config_pb2 as/from . import model_config_pb2 as/' "$out/grpc_service_pb2.py"
sed -i 's/^import model_config_pb2 as/from . import model_config_pb2 as/' "$out/grpc_service_pb2.pyi"
.venv/bin/python -c "import grpc_tools; from importlib.metadata import version as v; \
print('generated with grpcio-tools', v('grpcio-tools'), 'protobuf', v('protobuf'))"

"""The V2 inference protocol over gRPC: Triton's ``inference.GRPCInferenceService``.

``grpc_service.proto`` and ``model_config.proto`` are copied unchanged from
https://github.com/triton-inference-server/common, ``protobuf/`` at commit
83adf7cf88a2f343005974dff3728be746de2d66 (the files last changed in b0b5387, April
2026), under the BSD 3-Clause license of that repository (``LICENSE`` here, and the
header of each file). They are the protocol ``tritonclient.grpc`` speaks; KServe's
``grpc_predict_v2.proto`` declares the same service and a subset of its messages.

``grpc_service_pb2.py`` and ``model_config_pb2.py`` (with ``.pyi`` stubs) are generated
from them by ``bash scripts/gen_grpc.sh`` (grpcio-tools 1.72.1, pinned in the
``serve-test`` extra) and committed; regenerate them after changing the ``.proto``
files. The descriptors are the ones ``tritonclient`` 2.73 registers, so both load in
one process (protobuf accepts a file registered twice only when it is identical).
"""

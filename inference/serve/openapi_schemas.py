"""The schemas of the OpenAPI document (:mod:`inference.serve.openapi`): each model's
request bodies, from its features and dtype, and the answers of every endpoint.

OpenAPI 3.0.3: ``nullable`` rather than a ``null`` type, and ``exclusiveMinimum``
and ``exclusiveMaximum`` as booleans beside ``minimum`` and ``maximum``.
"""

from __future__ import annotations

from typing import Any

from inference.intervals import KINDS
from inference.serve.registry import LoadedModel
from inference.serve.responses import MLFLOW_ERROR_CODES
from inference.serve.tensors import DATATYPES
from inference.serve.v2 import model_metadata

__all__ = [
    "COMPONENTS",
    "ERRORS",
    "infer_request",
    "level_schema",
    "mlflow_request",
    "model_schemas",
    "ref",
]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_DURATION = {
    "type": "object",
    "properties": {"count": {"type": "integer"}, "ns": {"type": "integer"}},
}
_TENSOR_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "datatype", "shape"],
}
_CONFIG_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "data_type": {"type": "string", "enum": ["TYPE_FP32", "TYPE_FP64", "TYPE_STRING"]},
        "dims": {"type": "array", "items": {"type": "integer"}},
    },
}

#: the shared schemas (``components.schemas``)
COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    },
    "MlflowError": {
        "type": "object",
        "properties": {
            "error_code": {
                "type": "string",
                "enum": sorted({*MLFLOW_ERROR_CODES.values(), "INTERNAL_ERROR"}),
            },
            "message": {"type": "string"},
        },
        "required": ["error_code", "message"],
    },
    "InferenceResponse": {
        "type": "object",
        "description": "the outputs; binary ones (Triton's extension) in the body after "
        "this JSON header, with parameters.binary_data_size and no data",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string", "description": "the request's id, or a new UUID"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "datatype": {"type": "string", "enum": ["FP32", "FP64"]},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array", "items": {"type": "number"}},
                        "parameters": {"type": "object"},
                    },
                    "required": ["name", "datatype", "shape"],
                },
            },
        },
        "required": ["model_name", "id", "outputs"],
    },
    "ModelMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": _STRING_LIST,
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _TENSOR_META},
            "outputs": {"type": "array", "items": _TENSOR_META},
            "parameters": {"type": "object"},
        },
        "required": ["name", "platform", "inputs", "outputs"],
    },
    "ModelConfig": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "platform": {"type": "string"},
            "backend": {"type": "string"},
            "max_batch_size": {"type": "integer"},
            "input": {"type": "array", "items": _CONFIG_TENSOR},
            "output": {"type": "array", "items": _CONFIG_TENSOR},
        },
        "required": ["name", "platform", "max_batch_size", "input", "output"],
    },
    "ModelStatistics": {
        "type": "object",
        "properties": {
            "model_stats": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "last_inference": {"type": "integer"},
                        "inference_count": {"type": "integer"},
                        "execution_count": {"type": "integer"},
                        "inference_stats": {
                            "type": "object",
                            "additionalProperties": _DURATION,
                        },
                        "batch_stats": {"type": "array", "items": {"type": "object"}},
                    },
                },
            }
        },
        "required": ["model_stats"],
    },
    "RepositoryIndexRequest": {
        "type": "object",
        "description": "may be empty (no body): every model and version",
        "properties": {"ready": {"type": "boolean", "description": "the ready ones only"}},
    },
    "RepositoryIndex": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "state": {"type": "string", "enum": ["READY", "UNAVAILABLE", "LOADING"]},
                "reason": {"type": "string"},
            },
            "required": ["name", "version", "state", "reason"],
        },
    },
    "ServerMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": _STRING_LIST,
        },
        "required": ["name", "version", "extensions"],
    },
    "PredictResponse": {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "string"},
            "predictions": {"type": "array", "items": {"type": "number"}},
            "interval": {"type": "string", "enum": list(KINDS)},
            "level": {"type": "number"},
            "lower": {"type": "array", "items": {"type": "number"}},
            "upper": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["model", "version", "predictions"],
    },
    "MlflowPredictions": {
        "type": "object",
        "properties": {
            "predictions": {
                "type": "array",
                "description": "numbers; with params.interval, one record per row",
                "items": {
                    "anyOf": [
                        {"type": "number"},
                        {
                            "type": "object",
                            "properties": {
                                "prediction": {"type": "number"},
                                "lower": {"type": "number"},
                                "upper": {"type": "number"},
                            },
                        },
                    ]
                },
            }
        },
        "required": ["predictions"],
    },
}

#: what each error status means, for the operations that can answer it
ERRORS = {
    "400": "the body cannot be read (JSON, CSV, Parquet, UTF-8, compression), is not the "
    "protocol's shape, or (V2, MLflow) holds data the model cannot score",
    "401": "a token is required and missing or wrong",
    "404": "no such model, version or output",
    "408": "the body did not arrive within --body-timeout",
    "413": "over --max-body-bytes (or --max-json-bytes; compressed bodies: once "
    "decompressed) or --max-rows",
    "415": "an unsupported content type or Content-Encoding",
    "422": "the data cannot be scored (the Predictor's message), or a wrong interval or level",
    "501": "a Triton extension this server does not implement",
    "503": "no model is ready",
}


def level_schema() -> dict[str, Any]:
    """An interval's ``level``: a number in (0, 1)."""
    return _level()


def _level() -> dict[str, Any]:
    return {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "exclusiveMinimum": True,
        "exclusiveMaximum": True,
        "default": 0.95,
    }


def model_schemas(model: LoadedModel, strict: bool) -> dict[str, Any]:
    """The request schemas of one model's endpoints, from its features and dtype; with
    ``strict`` (``--strict-columns``), records admit no other names. (A model fitted on
    raw columns has :func:`inference.serve.openapi_design.design_schemas`.)"""
    p = model.predictor
    number = {"type": "number", "format": "float" if p.dtype.itemsize == 4 else "double"}
    features, k = list(p.features), len(p.features)
    record: dict[str, Any] = {
        "type": "object",
        "description": f"one row of {model.name}: {', '.join(features)}",
        "properties": {f: number for f in features},
        "required": features,
        "example": {f: 1.0 for f in features},
    }
    columns: dict[str, Any] = {
        "type": "object",
        "properties": {f: {"type": "array", "items": number} for f in features},
        "required": features,
    }
    if strict:
        record["additionalProperties"] = False
        columns["additionalProperties"] = False
    rows = {
        "type": "array",
        "items": {"type": "array", "items": number, "minItems": k, "maxItems": k},
    }
    inputs = {"anyOf": [record, {"type": "array", "items": record}, columns, rows]}
    wrapped = {
        "type": "object",
        "properties": {
            "inputs": inputs,
            "interval": {"type": "string", "enum": list(KINDS)},
            "level": _level(),
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }
    datatype = model_metadata(model)["inputs"][0]["datatype"]
    return {
        "predict": {"anyOf": [*inputs["anyOf"], wrapped]},
        "infer": _infer_schema(number, k, datatype),
        "mlflow": mlflow_request(features, record, rows, inputs),
    }


def _infer_schema(number: dict[str, Any], k: int, datatype: str) -> dict[str, Any]:
    """V2 ``/infer`` with JSON tensors."""
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "data": {"type": "array", "items": {"anyOf": [number, {"type": "array"}]}},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype"],
        "example": {"name": "features", "shape": [1, k], "datatype": datatype, "data": [1.0] * k},
    }
    return infer_request(tensor)


def infer_request(tensor: dict[str, Any]) -> dict[str, Any]:
    """V2 ``/infer``'s JSON request whose input tensors are ``tensor``."""
    output = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
        "required": ["name"],
    }
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {"type": "array", "items": output},
            "parameters": {
                "type": "object",
                "properties": {
                    "interval": {"type": "string", "enum": list(KINDS)},
                    "level": _level(),
                    "binary_data_output": {"type": "boolean"},
                },
            },
        },
        "required": ["inputs"],
    }


def mlflow_request(
    features: list[str],
    record: dict[str, Any],
    rows: dict[str, Any],
    inputs: dict[str, Any],
    example_row: list[Any] | None = None,
) -> dict[str, Any]:
    """MLflow's ``/invocations`` JSON: exactly one of its four formats, and ``params``."""
    return {
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": rows,
                    "index": {"type": "array"},
                },
                "required": ["columns", "data"],
                "example": {"columns": features, "data": [example_row or [1.0] * len(features)]},
            },
            "dataframe_records": {"type": "array", "items": record},
            "instances": inputs,
            "inputs": inputs,
            "params": {
                "type": "object",
                "properties": {
                    "interval": {"type": "string", "enum": list(KINDS), "nullable": True},
                    "level": _level(),
                },
            },
        },
        "minProperties": 1,
    }

# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""hf_crnn: the CRNN scene-text recognizer (Shi, Bai & Yao 2015) as a Hugging Face transformers model.

Importing this package registers CRNN with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForTextRecognition`, `AutoImageProcessor`, `AutoTokenizer`, `AutoProcessor`) and adds the
`"text-recognition"` pipeline task.
"""

from transformers import AutoConfig, AutoModel, AutoModelForTextRecognition, AutoProcessor, AutoTokenizer

# From its module: in transformers 5.4-5.16 the top-level name is a placeholder that demands torchvision.
from transformers.models.auto.image_processing_auto import AutoImageProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_crnn import CRNNConfig
from .image_processing_crnn import CRNNImageProcessor, load_image
from .language_model import CharNgramLanguageModel
from .modeling_crnn import (
    CRNNForTextRecognition,
    CRNNModel,
    CRNNModelOutput,
    CRNNPreTrainedModel,
    CRNNTextRecognitionOutput,
)
from .onnx_export import export_onnx  # imports neither onnx nor onnxruntime until called
from .pipeline_crnn import CRNNTextRecognitionPipeline
from .processing_crnn import CRNNProcessor
from .recognition import CRNNCascade
from .tokenization_crnn import LOWERCASE_ALPHANUMERIC, CRNNTokenizer

__version__ = "0.1.0"

AutoConfig.register(CRNNConfig.model_type, CRNNConfig, exist_ok=True)
AutoModel.register(CRNNConfig, CRNNModel, exist_ok=True)
AutoModelForTextRecognition.register(CRNNConfig, CRNNForTextRecognition, exist_ok=True)
AutoImageProcessor.register(CRNNConfig, slow_image_processor_class=CRNNImageProcessor, exist_ok=True)
AutoTokenizer.register(CRNNConfig, slow_tokenizer_class=CRNNTokenizer, exist_ok=True)
AutoProcessor.register(CRNNConfig, CRNNProcessor, exist_ok=True)

# `save_pretrained` of these writes `auto_map` and copies their code next to the files, for trust_remote_code loads.
CRNNImageProcessor.register_for_auto_class("AutoImageProcessor")
CRNNTokenizer.register_for_auto_class("AutoTokenizer")
CRNNProcessor.register_for_auto_class("AutoProcessor")

PIPELINE_REGISTRY.register_pipeline(
    "text-recognition",
    pipeline_class=CRNNTextRecognitionPipeline,
    pt_model=AutoModelForTextRecognition,
    type="image",
)

__all__ = [
    "CRNNCascade",
    "CRNNConfig",
    "CRNNForTextRecognition",
    "CRNNImageProcessor",
    "CRNNModel",
    "CRNNModelOutput",
    "CRNNPreTrainedModel",
    "CRNNProcessor",
    "CRNNTextRecognitionOutput",
    "CRNNTextRecognitionPipeline",
    "CRNNTokenizer",
    "CharNgramLanguageModel",
    "LOWERCASE_ALPHANUMERIC",
    "export_onnx",
    "load_image",
]

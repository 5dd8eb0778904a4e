# Copyright 2025 The hf-crnn Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""`evaluate` module for scene-text recognition: word accuracy, normalized word accuracy, CER and N.E.D.

Load it offline with `evaluate.load("path/to/hf_crnn/evaluate_metrics/text_recognition")` (or
`hf_crnn.metrics.load_metric()`). The computations live in `hf_crnn.metrics`, which must be importable.
"""

import datasets
import evaluate

from hf_crnn.metrics import compute_text_recognition_metrics


_DESCRIPTION = """
Scene-text recognition metrics over (prediction, reference) string pairs:

- `word_accuracy`: fraction of predictions exactly equal to their reference;
- `normalized_word_accuracy`: the benchmark protocol (IIIT5K, SVT, IC13, IC15, SVTP, CUTE80): lowercase both strings
  and keep only [0-9a-z] before comparing, so "Hello!" matches "hello";
- `cer`: character error rate, total Levenshtein distance over total reference length (corpus level);
- `ned`: ICDAR 2019 normalized edit distance, mean over samples of distance / max(len(reference), len(prediction));
- `one_minus_ned`: the ICDAR 2019 score 1 - N.E.D.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): recognised texts.
    references (`list[str]`): ground-truth texts, one per prediction.
Returns:
    `dict` with `word_accuracy`, `normalized_word_accuracy`, `cer`, `ned` and `one_minus_ned` (floats).
Examples:
    >>> metric = evaluate.load("hf_crnn/evaluate_metrics/text_recognition")
    >>> metric.compute(predictions=["hello", "wrld"], references=["Hello", "world"])
    {'word_accuracy': 0.0, 'normalized_word_accuracy': 0.5, 'cer': 0.2, 'ned': 0.2, 'one_minus_ned': 0.8}
"""

_CITATION = """
@article{shi2017crnn,
  title   = {An End-to-End Trainable Neural Network for Image-Based Sequence Recognition and Its Application to
             Scene Text Recognition},
  author  = {Shi, Baoguang and Bai, Xiang and Yao, Cong},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {39}, number = {11}, pages = {2298--2304}, year = {2017}
}
@inproceedings{sun2019icdar,
  title     = {ICDAR 2019 Competition on Large-Scale Street View Text with Partial Labeling - RRC-LSVT},
  author    = {Sun, Yipeng and others},
  booktitle = {ICDAR}, pages = {1557--1562}, year = {2019}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TextRecognition(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://rrc.cvc.uab.es/?ch=14&com=tasks", "https://arxiv.org/abs/1507.05717"],
        )

    def _compute(self, predictions, references):
        return compute_text_recognition_metrics(predictions, references)

# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Text-recognition pipeline for CRNN checkpoints ("image-to-text" through remote code, "text-recognition" locally)."""

from transformers import Pipeline

from .image_processing_crnn import load_image


class CRNNTextRecognitionPipeline(Pipeline):
    """
    Reads the text of word or line crops.

    `pipe(image)` returns `[{"generated_text": str, "score": float}]`; `pipe([image, ...])` returns one such list per
    image, in input order. Images are sorted by their resized width and batched `batch_size` at a time with others of
    similar width, so little compute goes to padding; padding never changes a result.

    Call options:
        batch_size (`int`): Images per forward pass (default: the pipeline's `batch_size`, else 1).
        output_char_offsets (`bool`): Add `char_offsets` to the best hypothesis: per character its `char`, `score`,
            the `frame` it is emitted at and that frame's centre `x` in the original image's pixels.
        lexicon, beam_width, top_k, method, delta, ...: Decoding options of `CRNNProcessor.batch_decode`; with
            `top_k=k` each image gets its k best hypotheses, best first. A lexicon result also carries
            `lexicon_fallback` (no lexicon word was close enough). The processor's default lexicon, if it has
            one, applies when no `lexicon` is given.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError("The text-recognition pipeline needs the checkpoint's CRNNProcessor.")

    def save_pretrained(self, save_directory, **kwargs):
        """Saves model and processor; the model's own save ships this pipeline's code for "image-to-text"."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)

    def _sanitize_parameters(self, output_char_offsets=None, **decoding_options):
        postprocess_params = dict(decoding_options)
        if output_char_offsets is not None:
            postprocess_params["output_char_offsets"] = output_char_offsets
        return {}, {}, postprocess_params

    def __call__(self, inputs, batch_size: int | None = None, **kwargs):
        single = not isinstance(inputs, (list, tuple))
        images = [inputs] if single else list(inputs)
        if not images:
            return []
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        batch_size = batch_size or self._batch_size or 1

        image_processor = self.processor.image_processor
        loaded = []
        for index, image in enumerate(images):
            try:
                loaded.append(load_image(image, image_processor.num_channels))
            except ValueError as error:
                raise ValueError(f"Input {index}: {error}") from error
        resized_widths = [image_processor.target_width(image.width, image.height) for image in loaded]
        order = sorted(range(len(loaded)), key=resized_widths.__getitem__)

        results = [None] * len(loaded)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            model_inputs = self.preprocess([loaded[i] for i in indices], **preprocess_params)
            model_outputs = self.forward(model_inputs, **forward_params)
            original_widths = [loaded[i].width for i in indices]
            for index, result in zip(indices, self.postprocess(model_outputs, original_widths, **postprocess_params)):
                results[index] = result
        return results[0] if single else results

    def preprocess(self, images, **kwargs):
        return self.processor.image_processor(images, return_tensors="pt")

    def _forward(self, model_inputs):
        pixel_values = model_inputs["pixel_values"].to(self.model.dtype)
        outputs = self.model(pixel_values=pixel_values, image_widths=model_inputs["image_widths"])
        return {"logits": outputs.logits, "frame_lengths": outputs.frame_lengths}

    def postprocess(self, model_outputs, original_widths=None, output_char_offsets: bool = False, **decoding_options):
        decoded = self.processor.batch_decode(
            model_outputs["logits"],
            model_outputs["frame_lengths"],
            output_scores=True,
            output_char_offsets=output_char_offsets,
            **decoding_options,
        )
        frame_lengths = model_outputs["frame_lengths"].tolist()
        results = []
        for row, item in enumerate(decoded):
            hypotheses = item.get("nbest", [item])
            result = [{"generated_text": h["text"], "score": h["score"]} for h in hypotheses]
            if "lexicon_fallback" in item:
                result[0]["lexicon_fallback"] = item["lexicon_fallback"]
            if output_char_offsets:
                # Frames tile the image evenly: frame f is centred at x = (f + 0.5) * width / frames.
                pixels_per_frame = original_widths[row] / max(frame_lengths[row], 1) if original_widths else 0.0
                result[0]["char_offsets"] = [
                    dict(offset, x=round((offset["frame"] + 0.5) * pixels_per_frame, 1))
                    for offset in item["char_offsets"]
                ]
            results.append(result)
        return results


__all__ = ["CRNNTextRecognitionPipeline"]

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
"""
Scene-text LMDB databases <-> `datasets.Dataset`.

The scene-text recognition community ships its data (MJSynth, SynthText crops, and the clovaai
deep-text-recognition-benchmark evaluation sets IIIT5K, SVT, IC13, IC15, SVTP, CUTE80) as LMDB databases written by
`create_dataset.py` (Shi et al.'s crnn, clovaai): for samples numbered from 1,

    b"image-%09d" -> encoded image file (JPEG, PNG, ...), b"label-%09d" -> UTF-8 text, b"num-samples" -> count.

`load_lmdb_dataset` turns one such database, or a folder tree of them, into a `datasets.Dataset` whose `image` column
keeps the original encoded bytes (no re-encoding). Samples are streamed into Arrow files on disk, so databases
larger than memory (MJSynth: 8.9M images) convert fine. Requires the `lmdb` package (`pip install lmdb`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterable, Iterator

import PIL.Image


logger = logging.getLogger(__name__)

NUM_SAMPLES_KEY = b"num-samples"
IMAGE_KEY_FORMAT = "image-%09d"
LABEL_KEY_FORMAT = "label-%09d"
LMDB_DATA_FILE = "data.mdb"


def _import_lmdb():
    try:
        import lmdb
    except ImportError as error:
        raise ImportError("Reading and writing LMDB databases needs the `lmdb` package: pip install lmdb") from error
    return lmdb


def _open_environment(path: str, readonly: bool = True, map_size: int = 1 << 30):
    lmdb = _import_lmdb()
    if readonly:
        # lock=False: several processes read concurrently; readahead=False: random access on big databases.
        return lmdb.open(
            path,
            subdir=os.path.isdir(path),
            readonly=True,
            lock=False,
            readahead=False,
            meminit=False,
            max_readers=256,
        )
    return lmdb.open(path, map_size=map_size)


def find_lmdb_databases(root: str | os.PathLike) -> list[str]:
    """All LMDB databases at or under `root`: folders holding a `data.mdb` file, or `root` itself if it is one.

    Returns:
        `list[str]`: absolute paths, sorted.

    Raises:
        `ValueError`: if `root` does not exist or holds no LMDB database.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.exists(root):
        raise ValueError(f"LMDB path {root!r} does not exist.")
    if os.path.isfile(root):  # a database written with subdir=False
        return [root]
    databases = sorted(folder for folder, _, files in os.walk(root) if LMDB_DATA_FILE in files)
    if not databases:
        raise ValueError(f"No LMDB database (a folder with a {LMDB_DATA_FILE} file) under {root!r}.")
    return databases


def _database_index_range(path: str) -> tuple[int, int]:
    """`(first, stop)` sample numbers of a database; numbering starts at 1 by convention, at 0 in a few databases."""
    with _open_environment(path) as environment, environment.begin() as transaction:
        count = transaction.get(NUM_SAMPLES_KEY)
        if count is None:
            raise ValueError(f"LMDB database {path!r} has no {NUM_SAMPLES_KEY.decode()!r} key: not a scene-text LMDB.")
        count = int(count.decode("ascii").strip())
        if count == 0:
            return 1, 1
        for first in (1, 0):
            if transaction.get((IMAGE_KEY_FORMAT % first).encode()) is not None:
                return first, first + count
    raise ValueError(f"LMDB database {path!r} has neither {IMAGE_KEY_FORMAT % 1!r} nor {IMAGE_KEY_FORMAT % 0!r}.")


def _generate_samples(
    shards: list[tuple[str, str, int, int]], max_label_length: int | None, skip_invalid: bool
) -> Iterator[dict]:
    for path, source, start, stop in shards:
        with _open_environment(path) as environment, environment.begin() as transaction:
            for index in range(start, stop):
                image_bytes = transaction.get((IMAGE_KEY_FORMAT % index).encode())
                label = transaction.get((LABEL_KEY_FORMAT % index).encode())
                problem = None
                if image_bytes is None or label is None:
                    problem = "missing image or label"
                else:
                    try:
                        label = label.decode("utf-8")
                        # Opening parses the header only: cheap, and catches non-images and empty images.
                        with PIL.Image.open(io.BytesIO(image_bytes)) as image:
                            width, height = image.size
                        if width == 0 or height == 0:
                            problem = "empty image"
                    except (UnicodeDecodeError, PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
                        problem = f"unreadable ({error})"
                if problem is not None:
                    if not skip_invalid:
                        raise ValueError(f"Sample {index} of LMDB database {path!r}: {problem}.")
                    logger.warning("Skipping sample %d of %s: %s.", index, path, problem)
                    continue
                if max_label_length is not None and len(label) > max_label_length:
                    continue
                yield {
                    "image": {"bytes": bytes(image_bytes), "path": None},
                    "text": label,
                    "width": width,
                    "height": height,
                    "source": source,
                    "lmdb_index": index,
                }


def lmdb_features():
    """The `datasets.Features` of `load_lmdb_dataset`'s datasets."""
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "text": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "source": datasets.Value("string"),
            "lmdb_index": datasets.Value("int64"),
        }
    )


def load_lmdb_dataset(
    path: str | os.PathLike,
    max_samples: int | None = None,
    max_label_length: int | None = None,
    skip_invalid: bool = True,
    num_proc: int | None = None,
    cache_dir: str | None = None,
):
    """Read scene-text LMDB database(s) into a `datasets.Dataset`, streaming to disk (never all in memory).

    Args:
        path (`str` or `os.PathLike`):
            One LMDB database (a folder with `data.mdb`, or the file of a `subdir=False` database), or a folder tree
            holding several (e.g. clovaai's `data_lmdb_release/training`), which are concatenated in path order.
        max_samples (`int`, *optional*): Read at most this many samples per database (e.g. for a quick subset).
        max_label_length (`int`, *optional*): Drop samples whose label is longer (clovaai's `batch_max_length`).
        skip_invalid (`bool`, *optional*, defaults to True):
            Skip (with a warning) samples whose image cannot be opened or whose label is missing or not UTF-8,
            instead of raising.
        num_proc (`int`, *optional*): Processes to read with; each database is split into `num_proc` ranges.
        cache_dir (`str`, *optional*): `datasets` cache folder for the Arrow files.

    Returns:
        `datasets.Dataset` with columns `image` (`Image`, original encoded bytes), `text`, `width` and `height`
        (original pixel size), `source` (database folder relative to `path`, `"."` for `path` itself) and
        `lmdb_index` (sample number in its database).
    """
    import datasets

    if max_samples is not None and max_samples < 1:
        raise ValueError(f"`max_samples` must be positive, got {max_samples}.")
    if max_label_length is not None and max_label_length < 1:
        raise ValueError(f"`max_label_length` must be positive, got {max_label_length}.")
    root = os.path.abspath(os.fspath(path))
    num_ranges = max(1, num_proc or 1)
    shards, fingerprint = [], hashlib.sha256()
    for database in find_lmdb_databases(root):
        first, stop = _database_index_range(database)
        if max_samples is not None:
            stop = min(stop, first + max_samples)
        source = os.path.relpath(database, root) if os.path.isdir(root) else "."
        bounds = [first + (stop - first) * part // num_ranges for part in range(num_ranges + 1)]
        shards += [(database, source, low, high) for low, high in zip(bounds[:-1], bounds[1:]) if high > low]
        # The cache key must change when a database is rewritten in place: include its size and mtime.
        data_file = os.path.join(database, LMDB_DATA_FILE) if os.path.isdir(database) else database
        data_stat = os.stat(data_file)
        fingerprint.update(f"{database}|{first}|{stop}|{data_stat.st_size}|{data_stat.st_mtime_ns};".encode())
    if not shards:
        raise ValueError(f"The LMDB database(s) under {root!r} hold no samples.")
    fingerprint.update(f"{max_label_length}|{skip_invalid}".encode())

    try:
        return datasets.Dataset.from_generator(
            _generate_samples,
            features=lmdb_features(),
            gen_kwargs={"shards": shards, "max_label_length": max_label_length, "skip_invalid": skip_invalid},
            num_proc=num_proc if len(shards) > 1 else None,
            cache_dir=cache_dir,
            fingerprint=f"lmdb-{fingerprint.hexdigest()[:32]}",
        )
    except datasets.exceptions.DatasetGenerationError as error:
        # Surface our own message (e.g. which sample is unreadable) instead of the generic wrapper's.
        if isinstance(error.__cause__, ValueError):
            raise ValueError(str(error.__cause__)) from error
        raise


def _encode_image(image, image_format: str) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, dict) and image.get("bytes") is not None:  # a `datasets` image with decode=False
        return image["bytes"]
    if not isinstance(image, PIL.Image.Image):
        raise ValueError(f"Images must be PIL images or encoded bytes, got {type(image).__name__}.")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def write_lmdb_dataset(
    samples: Iterable[dict],
    path: str | os.PathLike,
    image_column: str = "image",
    text_column: str = "text",
    image_format: str = "PNG",
    map_size: int = 1 << 30,
    commit_every: int = 1000,
) -> int:
    """Write samples to a scene-text LMDB database (the layout `load_lmdb_dataset` and other toolkits read).

    Args:
        samples (`Iterable[dict]`): e.g. a `datasets.Dataset`; each with a PIL image (or encoded bytes) and a text.
        path (`str` or `os.PathLike`): Database folder, created if needed; existing keys are overwritten.
        image_column, text_column (`str`, *optional*): Keys of the image and the label.
        image_format (`str`, *optional*, defaults to `"PNG"`): PIL format for encoding PIL images.
        map_size (`int`, *optional*, defaults to 1 GiB): Largest database size, in bytes.
        commit_every (`int`, *optional*, defaults to 1000): Samples per write transaction.

    Returns:
        `int`: the number of samples written (numbered from 1).
    """
    os.makedirs(path, exist_ok=True)
    count = 0
    with _open_environment(os.fspath(path), readonly=False, map_size=map_size) as environment:
        transaction = environment.begin(write=True)
        try:
            for sample in samples:
                count += 1
                transaction.put((IMAGE_KEY_FORMAT % count).encode(), _encode_image(sample[image_column], image_format))
                transaction.put((LABEL_KEY_FORMAT % count).encode(), str(sample[text_column]).encode("utf-8"))
                if count % commit_every == 0:
                    transaction.commit()
                    transaction = environment.begin(write=True)
            transaction.put(NUM_SAMPLES_KEY, str(count).encode("ascii"))
            transaction.commit()
        except BaseException:
            transaction.abort()
            raise
    return count

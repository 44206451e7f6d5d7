"""The Made With ML corpus for the text classifier: reading, splitting, featurizing.

Each example is a project's title and description, labelled with one of four tags.
`dataset.csv` is split into train and validation (stratified by tag, fixed seed, 20%
validation: 611 / 153 examples); `holdout.csv` is the test set.

Featurization is fastText-style bags of n-grams: word uni- and bigrams plus character
2–5-grams inside word boundaries, TF-IDF weighted (sublinear term frequency, each block
L2-normalized). The vocabulary is fitted on the training split only, keeping n-grams
seen in at least two training documents, so validation and test never leak into it.
Documents become padded rows of (feature id, weight) pairs for `torch.nn.EmbeddingBag`;
id 0 is padding.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split

from suite.errors import DataError
from tasks.data import fetch

__all__ = [
    "TAGS", "SPLIT_SEED", "Split", "Corpus", "read_examples", "split_examples",
    "load_corpus",
]

TAGS = ("computer-vision", "mlops", "natural-language-processing", "other")
COLUMNS = ("title", "description", "tag")
SPLIT_SEED = 42
VAL_FRACTION = 0.2
DATASET, HOLDOUT = "madewithml/dataset.csv", "madewithml/holdout.csv"

# tiny: a stratified subset of every split and a capped vocabulary, so a test run of a
# few epochs takes milliseconds; full: everything, vocabulary capped only by min_df.
_SUBSET = {"tiny": {"train": 100, "val": 40, "test": 40}, "full": None}
_MAX_FEATURES = {"tiny": 1000, "full": None}  # per n-gram block (words, characters)


@dataclass(frozen=True)
class Split:
    """One featurized split: the TF-IDF matrix and its padded EmbeddingBag form.

    Attributes:
        matrix: (documents × features) TF-IDF CSR matrix, float32.
        ids: (documents × longest) int64 feature ids + 1, 0 where padded.
        weights: (documents × longest) float32 TF-IDF weights, 0 where padded.
        labels: (documents,) int64 indices into `TAGS`.
    """

    matrix: sp.csr_matrix
    ids: np.ndarray
    weights: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Corpus:
    """The three featurized splits, the vocabulary size and its fingerprint."""

    train: Split
    val: Split
    test: Split
    num_features: int
    fingerprint: str


def read_examples(path: Path) -> pd.DataFrame:
    """Read a Made With ML CSV, checking its columns, rows and tags.

    Raises:
        DataError: a one-line message naming the file when it is unreadable, lacks a
            column, has no rows, or holds a tag outside `TAGS`.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV ({reason})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; "
                        f"expected {', '.join(COLUMNS)}")
    if frame.empty:
        raise DataError(f"{path}: no examples (only a header)")
    unknown = sorted(set(frame["tag"]) - set(TAGS))
    if unknown:
        shown = ", ".join(repr(t) for t in unknown[:3]) + (", …" if len(unknown) > 3 else "")
        raise DataError(f"{path}: unknown tag(s) {shown}; expected one of {', '.join(TAGS)}")
    return frame.reset_index(drop=True)


def split_examples(frame: pd.DataFrame, *, scale: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `dataset.csv` into (train, validation), stratified by tag, fixed seed.

    Raises:
        DataError: when a tag has too few examples to appear on both sides.
    """
    train, val = _stratified(frame, test_size=VAL_FRACTION)
    subset = _SUBSET[scale]
    if subset:
        train = _stratified(train, train_size=subset["train"])[0]
        val = _stratified(val, train_size=subset["val"])[0]
    return train, val


def _stratified(frame: pd.DataFrame, **size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        return train_test_split(frame, stratify=frame["tag"], random_state=SPLIT_SEED, **size)
    except ValueError as exc:  # a tag with a single example cannot be stratified
        raise DataError(f"cannot split the data stratified by tag: {exc}") from None


def load_corpus(scale: str) -> Corpus:
    """The featurized corpus at `scale` ('tiny' or 'full'), cached per process.

    Files come through `tasks.data.fetch`, which verifies their checksums on every call;
    the featurization is computed once per (scale, files).
    """
    return _featurize(scale, fetch(DATASET), fetch(HOLDOUT))


@functools.lru_cache(maxsize=4)
def _featurize(scale: str, dataset: Path, holdout: Path) -> Corpus:
    train, val = split_examples(read_examples(dataset), scale=scale)
    test = read_examples(holdout)
    if _SUBSET[scale]:
        test = _stratified(test, train_size=_SUBSET[scale]["test"])[0]
    vectorizers = _vectorizers(_MAX_FEATURES[scale])
    train_matrix = sp.hstack([v.fit_transform(_texts(train)) for v in vectorizers]).tocsr()

    def featurized(frame: pd.DataFrame, matrix: sp.csr_matrix | None = None) -> Split:
        if matrix is None:
            matrix = sp.hstack([v.transform(_texts(frame)) for v in vectorizers]).tocsr()
        ids, weights = _padded(matrix)
        labels = np.array([TAGS.index(t) for t in frame["tag"]], dtype=np.int64)
        return Split(matrix, ids, weights, labels)

    vocabulary = [term for v in vectorizers for term in v.get_feature_names_out()]
    fingerprint = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()[:16]
    return Corpus(featurized(train, train_matrix), featurized(val), featurized(test),
                  len(vocabulary), fingerprint)


def _vectorizers(max_features: int | None) -> list[TfidfVectorizer]:
    common = {"sublinear_tf": True, "min_df": 2, "max_features": max_features,
              "dtype": np.float32}
    return [
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), **common),
        # char_wb n-grams catch morphology and sub-words ("segment", "segmentation")
        # that a 611-document word vocabulary would miss.
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
    ]


def _texts(frame: pd.DataFrame) -> list[str]:
    return (frame["title"] + ". " + frame["description"]).tolist()


def _padded(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows → (ids, weights) padded to the longest row; feature j becomes id j + 1."""
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    cols = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], lengths)
    width = max(int(lengths.max(initial=0)), 1)
    ids = np.zeros((matrix.shape[0], width), dtype=np.int64)
    weights = np.zeros((matrix.shape[0], width), dtype=np.float32)
    ids[rows, cols] = matrix.indices + 1
    weights[rows, cols] = matrix.data
    return ids, weights

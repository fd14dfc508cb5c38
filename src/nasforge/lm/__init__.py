"""Language-model architecture search (LLaMA-NAS, InstaTune) on the ``llm`` space: a byte
corpus made without downloads, pre-training of the largest network, one-shot fine-tuning of
its sub-networks, perplexity, and the multi-objective sub-network search as a study.

Example:
    >>> from nasforge.lm import load_corpus
    >>> load_corpus().valid.dtype
    dtype('uint8')
"""

from __future__ import annotations

from nasforge.lm.corpus import ByteCorpus, load_corpus, package_sources
from nasforge.lm.search import SubLMSearchResult, search_sublms
from nasforge.lm.supernet import load_super_lm, prepare_super_lm
from nasforge.lm.train import (
    TrainLog,
    TrainSettings,
    finetune_supernet,
    perplexity,
    train_alone,
    train_largest,
)

__all__ = [
    "ByteCorpus",
    "SubLMSearchResult",
    "TrainLog",
    "TrainSettings",
    "finetune_supernet",
    "load_corpus",
    "load_super_lm",
    "package_sources",
    "perplexity",
    "prepare_super_lm",
    "search_sublms",
    "train_alone",
    "train_largest",
]

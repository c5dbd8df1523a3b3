"""Deterministic 384-d text embeddings by feature hashing (no model needed)."""
import hashlib
import math
import re

DIM = 384


def embed(text):
    """Hash each lower-cased word (and word bigram) into signed buckets; L2-normalise."""
    vec = [0.0] * DIM
    words = re.findall(r"\w+", text.lower())
    feats = words + [a + " " + b for a, b in zip(words, words[1:])]
    if not feats:
        feats = [text]
    for f in feats:
        h = hashlib.sha256(f.encode()).digest()
        for i in range(0, 8, 2):
            idx = int.from_bytes(h[i:i + 2], "little") % DIM
            vec[idx] += 1.0 if h[16 + i] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def to_literal(vec):
    """pgvector text form of a list of floats."""
    return "[" + ",".join(repr(float(v)) for v in vec) + "]"

"""Reverse a sequence over {1, 2, 3}: the Tracr program of the ACDC paper's tracr-reverse task."""

from tracr.compiler import lib
from tracr.rasp import rasp

VOCAB = (1, 2, 3)
MAX_SEQ_LEN = 5
BOS = "BOS"
N_EXAMPLES = 363  # every input of length 1..5
DESCRIPTION = "reverse a sequence of length 1-5 over {1,2,3}"
CITATION = "Lindner et al. 2023 (tracr lib.make_reverse); Conmy et al. 2023, ACDC, Sec. 4"
SOURCE = "tracr.compiler.lib, program 'reverse'"


def make_program() -> rasp.SOp:
    return lib.make_reverse(rasp.tokens)

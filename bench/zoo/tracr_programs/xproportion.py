"""Running fraction of "x" tokens over {w, x, y, z}: the Tracr program of the ACDC paper's
tracr-xproportion task (a numerical output)."""

from tracr.compiler import lib
from tracr.rasp import rasp

VOCAB = ("w", "x", "y", "z")
MAX_SEQ_LEN = 5
BOS = "BOS"
N_EXAMPLES = 256  # of the 1,364 inputs of length 1..5, every length in proportion
DESCRIPTION = "fraction of previous tokens equal to 'x' over {w,x,y,z}, lengths 1-5"
CITATION = "Lindner et al. 2023 (tracr lib.make_frac_prevs); Conmy et al. 2023, ACDC, Sec. 4"
SOURCE = "tracr.compiler.lib, program 'xproportion'"


def make_program() -> rasp.SOp:
    return lib.make_frac_prevs((rasp.tokens == "x").named("is_x"))

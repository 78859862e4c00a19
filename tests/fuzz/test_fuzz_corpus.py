"""Replays the atheris seed corpus (fuzz/corpus/<target>/) through the fuzz
targets (fuzz/targets.py), and mutates it with hypothesis: byte flips,
truncations and splices of real inputs must end in each parser's
documented error, never another exception. The frame target feeds one
1-RTT packet of arbitrary frames to an established server engine, which
is the hypothesis fuzz test for the engine's frame parser here."""

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz.targets import TARGETS

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "fuzz", "corpus")


def corpus(target):
    d = os.path.join(CORPUS, target)
    return [open(os.path.join(d, name), "rb").read() for name in sorted(os.listdir(d))]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays_cleanly(target):
    inputs = corpus(target)
    assert inputs, f"fuzz/corpus/{target} is empty"
    for data in inputs:
        TARGETS[target](data)


@st.composite
def mutated(draw, seeds):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        if op == 0 and data:                                   # flip a byte
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == 1 and data:                                 # truncate
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif op == 2:                                          # insert random bytes
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:                                                  # splice another seed
            other = draw(st.sampled_from(seeds))
            data += other[draw(st.integers(0, len(other))):]
    return bytes(data)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
# Each closing input costs a fresh handshake (about 10 ms): fewer examples.
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("target", ["packet_header", "transport_params", "tls_messages"])
def test_mutated_corpus(target):
    @FAST
    @given(mutated(corpus(target)))
    def check(data):
        TARGETS[target](data)

    check()


@SLOW
@given(mutated(corpus("frames")))
def test_mutated_frames_into_an_established_server(data):
    TARGETS["frames"](data)


@SLOW
@given(st.binary(min_size=1, max_size=200))
def test_random_frames_into_an_established_server(data):
    TARGETS["frames"](data)

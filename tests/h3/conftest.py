import asyncio

import pytest

from tests.helpers.certs import pki_paths


@pytest.fixture(scope="session")
def pki():
    return pki_paths()


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))

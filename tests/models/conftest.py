import pytest

from ytlabel.models import spec as S


@pytest.fixture(params=list(S.ARCHITECTURES))
def arch(request) -> str:
    return request.param

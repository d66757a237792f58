"""Shared fixtures: real SQLite and file store in a tmp folder, synthetic data, a loopback guard."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.model_folder import Manifest
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fast suite (`-m "not slow"`) trains nothing: a test that needs the trained model, even
    through another fixture, must be marked slow."""
    for item in items:
        needs_training = "trained_model" in getattr(item, "fixturenames", ())
        if needs_training and item.get_closest_marker("slow") is None:
            raise pytest.UsageError(f"{item.nodeid} needs the trained model but is not marked slow")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach a host that is not on this machine."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise AssertionError(f"test tried to reach non-loopback address {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and not _is_loopback(host):
            raise AssertionError(f"test tried to resolve non-loopback host {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def services(settings: Settings) -> Services:
    s = open_services(settings)
    yield s
    s.close()


@pytest.fixture(scope="session")
def synth_zip() -> bytes:
    return make_voc_zip(images=24, seed=3)


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "datasets").is_dir():
        pytest.skip("../shared/datasets is not present (fresh clone)")
    return SHARED


@dataclass
class TrainedModel:
    """One tiny model trained once per test session and shared by export, edge and bot tests."""

    out_dir: Path
    manifest: Manifest
    config: object
    data: object
    result: object
    services: Services


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, train_and_deliver

    root = tmp_path_factory.mktemp("trained")
    services = open_services(Settings(home=root / "home"))
    services.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21))
    label_map, data = load_data(services, "local", ["shapes"], root / "cache")
    config = TrainConfig(labels=label_map.labels, steps=200, **TINY)
    result, manifest = train_and_deliver(config, data, root / "work", root / "model")
    return TrainedModel(root / "model", manifest, config, data, result, services)

"""Shared fixtures: real SQLite and file store in a tmp folder, synthetic data, a loopback guard."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

import trainer  # noqa: F401  (before any test imports TensorFlow: its settings, trainer/__init__.py)
from storage.model_folder import Manifest, ModelFolder
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


# The modules that take longest (a minute or more each, most of it training), longest first. The
# suite runs on pytest-xdist's workers a module at a time (`--dist loadscope`); starting these first
# keeps both workers busy to the end instead of leaving one long module to run alone.
LONGEST_FIRST = (
    "tests/trainer/test_worker.py",
    "tests/cluster/test_remote_workers.py",
    "tests/cluster/test_remote_workers_s3.py",
    "tests/bot/test_commands.py",
    "tests/bot/test_training_e2e_broker.py",
    "tests/trainer/test_training.py",
    "tests/trainer/test_worker_kill.py",
    "tests/bot/test_pages_browser.py",
    "tests/bot/test_training_e2e.py",
    "tests/test_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fast suite (`-m "not slow"`) trains nothing: a test that needs the trained model, even
    through another fixture, must be marked slow. The longest modules run first (LONGEST_FIRST)."""
    for item in items:
        needs_training = "trained_model" in getattr(item, "fixturenames", ())
        if needs_training and item.get_closest_marker("slow") is None:
            raise pytest.UsageError(f"{item.nodeid} needs the trained model but is not marked slow")

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a module, and of the other modules, stays


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
    # Under pytest-xdist the workers share one model: the first to get here trains it, the others
    # wait on the lock and then read it (the same model either way: the tiny config is deterministic).
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return _trained_model(tmp_path_factory.mktemp("trained"))
    root = tmp_path_factory.getbasetemp().parent / "trained"  # this session's, shared by its workers
    root.mkdir(exist_ok=True)
    with open(root.parent / "trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _trained_model(root)


def _trained_model(root: Path) -> TrainedModel:
    """Trains the model into root, or reads it back when an earlier worker did."""
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, train_and_deliver

    done = root / "trained.pickle"  # written last: its presence means the model is complete
    services = open_services(Settings(home=root / "home"))
    if not done.exists():
        services.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21))
    _label_map, data = load_data(services, "local", ["shapes"], root / "cache")
    if done.exists():
        config, result = pickle.loads(done.read_bytes())
        return TrainedModel(
            root / "model", ModelFolder(root / "model").manifest(), config, data, result, services
        )
    config = TrainConfig(labels=_label_map.labels, steps=200, **TINY)
    result, manifest = train_and_deliver(config, data, root / "work", root / "model")
    done.write_bytes(pickle.dumps((config, result)))
    return TrainedModel(root / "model", manifest, config, data, result, services)

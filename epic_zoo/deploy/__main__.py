"""``python -m epic_zoo.deploy``: export, provision, broker, edge, central, testbed.

A deployment, step by step (one terminal per line, or one machine per role)::

    python -m epic_zoo.deploy export epic.flatvel-a --out bundle
    python -m epic_zoo.deploy provision --devices 5 --out secrets
    python -m epic_zoo.deploy broker --credentials secrets --devices 5 --port 1883
    python -m epic_zoo.deploy central --bundle bundle/central --credentials secrets/central.json \\
        --broker 127.0.0.1:1883 --out maps
    python -m epic_zoo.deploy edge --bundle bundle/devices/device-0 --device 0 \\
        --credentials secrets/device-0.json --broker 127.0.0.1:1883 --watch incoming/

Everything on this machine, measured: ``python -m epic_zoo.deploy testbed --devices 5 --link wifi --samples 50``.

Expected failures (a missing or wrong bundle, credentials or folder, an
output path that cannot be written, a broker that refuses or does not
answer) print one line naming the input and the fix and exit with status 1;
every output path is checked before the work starts. ``EPIC_ZOO_TRACEBACK=1``
shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"--broker {text!r} must be HOST:PORT with a port 1..65535, e.g. 127.0.0.1:1883"
        )
    return host or "127.0.0.1", int(port)


def _int_at_least(low: int, high: int | None = None):
    """An argparse type: an integer ``low <= n (<= high)``, one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} must be {bound}")
        return value

    parse.__name__ = "integer"
    return parse


def _float_above(low: float, *, inclusive: bool = False):
    """An argparse type: a finite number ``> low`` (``>= low`` if ``inclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(
                f"{text} must be a finite number {'>=' if inclusive else '>'} {low:g}"
            )
        return value

    parse.__name__ = "number"
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: COMMAND: ...``), no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog.split()[-1]}: {message} (see --help)\n")


class CliError(Exception):
    """An input problem with its fix, printed as one line."""


def _names(text: str) -> list[str]:
    """A comma-separated option as a list (``"a, b,"`` -> ``["a", "b"]``)."""
    return [s.strip() for s in text.split(",") if s.strip()]


def _writable_file(path: Path | None, flag: str) -> None:
    """Fail now, not after the work, if ``path`` cannot be written (its folder is created)."""
    if path is None:
        return
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()
    except OSError as err:
        raise CliError(
            f"cannot write {flag} {path} ({err.strerror or err}); pass a writable path"
        ) from None


def _writable_dir(path: Path, flag: str) -> None:
    """Fail now if the folder ``path`` cannot be created or written."""
    from epic_zoo.data.store import DataError, check_writable

    try:
        check_writable(path, flag, fix="Pass a writable folder.")
    except DataError as err:
        raise CliError(str(err)) from None


class _CurrentStderr(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    ``logging.StreamHandler()`` keeps the stream it was made with; a process
    that swaps ``sys.stderr`` (a test harness, an embedding application) would
    then log into a closed stream.
    """

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    """Rejected messages and skipped inputs go to stderr with a time stamp."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        handlers=[_CurrentStderr()],
    )


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM/SIGINT, so the loops end cleanly (acks flushed, status offline)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _not_there(path: Path | None, flag: str, force: bool) -> None:
    """An output named on the command line that exists is replaced only with ``--force``."""
    if path is not None and path.exists() and not force:
        raise CliError(f"{flag} {path} exists; pass --force to replace it, or another path")


def cmd_export(args: argparse.Namespace) -> int:
    from epic_zoo.data.contract import InputContract
    from epic_zoo.deploy.export import MANIFEST, export_bundle, load_source_model

    _not_there(args.out / MANIFEST, "--out", args.force)

    model, info = load_source_model(
        args.model,
        untrained=InputContract.make(args.dataset, args.time_stride, args.devices),
        seed=args.seed,
    )
    if not info["trained"]:
        print(
            f"warning: {args.model} is an architecture, exported with UNTRAINED weights (seed "
            f"{args.seed}): fine for plumbing and timing, its maps are meaningless",
            file=sys.stderr,
        )
    out = export_bundle(
        model,
        args.out,
        name=info["name"],
        contract=info["contract"],
        trained=info["trained"],
        source=info["source"],
    )
    manifest = json.loads((out / "manifest.json").read_text())
    print(
        f"exported {manifest['name']} ({manifest['mode']} mode, model_version "
        f"{manifest['model_version']:#010x}) for {manifest['num_devices']} devices to {out}"
    )
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from epic_zoo.deploy.security import provision

    _writable_dir(args.out, "--out")
    try:
        creds = provision(args.devices, args.out, overwrite=args.force)
    except FileExistsError as err:
        raise CliError(str(err)) from None
    modes = {oct(os.stat(args.out / f"{user}.json").st_mode & 0o777) for user in creds}
    print(
        f"wrote {len(creds)} credential files to {args.out} (mode {', '.join(sorted(modes))}): "
        f"{', '.join(creds)}"
    )
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from epic_zoo.deploy.broker import Broker, size_limit
    from epic_zoo.deploy.security import Credentials
    from epic_zoo.deploy.transport import Topics

    creds = {p.stem: Credentials.load(p) for p in sorted(Path(args.credentials).glob("*.json"))}
    if not creds:
        raise CliError(
            f"no *.json credentials in --credentials {args.credentials}; make them with "
            f"`python -m epic_zoo.deploy provision --devices {args.devices} --out {args.credentials}`"
        )
    tls_files = (args.cafile, args.certfile, args.keyfile)
    if any(tls_files) and not all(tls_files):
        raise CliError("TLS needs all of --cafile, --certfile and --keyfile")
    from epic_zoo.deploy.broker import BrokerLimits

    limits = BrokerLimits(
        max_queued_messages=args.max_queued_messages,
        max_queued_bytes=args.max_queued_bytes,
        max_inflight_messages=args.max_inflight_messages,
        autosave_interval=args.autosave_interval,
    )
    limit = args.message_size_limit
    if args.bundle is not None and limit is None:
        from epic_zoo.deploy.central import message_limits
        from epic_zoo.deploy.export import read_manifest

        limit = size_limit(max(message_limits(read_manifest(args.bundle))))
    _writable_dir(args.workdir, "--workdir")
    stop = _stop_on_signals()
    tls = (
        dict(zip(("cafile", "certfile", "keyfile"), tls_files, strict=True))
        if all(tls_files)
        else None
    )
    broker = Broker(
        args.workdir,
        creds,
        args.devices,
        Topics(args.prefix),
        host=args.host,
        port=args.port,
        tls=tls,
        message_size_limit=limit,
        limits=limits,
    )
    with broker:
        print(
            f"mosquitto on {args.host}:{broker.port} (config {broker.config_path}); Ctrl-C stops it"
        )
        while not stop.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                raise CliError(f"mosquitto exited; see its log {broker.log_path}")
    return 0


def cmd_edge(args: argparse.Namespace) -> int:
    import torch

    from epic_zoo.deploy.edge import EdgeNode, FolderSource, ReplaySource
    from epic_zoo.deploy.security import Credentials
    from epic_zoo.deploy.transport import Topics
    from epic_zoo.hardware.profiles import get_link

    if args.first_sample < 0:
        raise CliError(f"--first-sample {args.first_sample} must be >= 0")
    if args.watch is not None and not args.watch.is_dir():
        raise CliError(f"--watch folder {args.watch} does not exist; create it first")
    if args.data is not None and not args.data.exists():
        raise CliError(f"--data {args.data} does not exist; pass a split folder, shard or .npy")
    _not_there(args.stats, "--stats", args.force)
    _writable_file(args.stats, "--stats")
    link = get_link(args.link) if args.link else None
    torch.set_num_threads(args.threads)
    _log_to_stderr()
    stop = _stop_on_signals()
    node = EdgeNode(
        args.bundle,
        args.device,
        Credentials.load(args.credentials),
        args.broker,
        topics=Topics(args.prefix),
        link=link,
        shared_bucket=args.shared_bucket,
        listen_triggers=args.trigger,
        ca_certs=args.cafile,
    )
    time_samples = int(node.encoder.manifest["time_samples"])
    stride = int(node.encoder.manifest.get("time_stride", 1))
    source = (
        FolderSource(
            args.watch, node.encoder.receivers, time_lengths={time_samples, time_samples * stride}
        )
        if args.watch
        else ReplaySource(args.data, node.encoder.receivers)
    )
    node.encoder.warmup()
    node.connect()
    try:
        if isinstance(source, FolderSource):
            node.run_folder(source, args.samples, stop)
        else:
            if args.trigger:
                node.run_triggered(source, args.samples, stop)
            else:
                count = args.samples if args.samples is not None else len(source)
                ids = range(args.first_sample, args.first_sample + count)
                start = args.start_at if args.start_at is not None else time.time()
                node.run_paced(source, ids, args.interval, start, stop)
    finally:
        node.close()
        summary = node.summary()
        if args.stats:
            Path(args.stats).write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary))
    return 0


def cmd_central(args: argparse.Namespace) -> int:
    from epic_zoo.deploy.central import CentralNode, configure_threads
    from epic_zoo.deploy.security import Credentials
    from epic_zoo.deploy.transport import Topics

    _writable_dir(args.out, "--out")
    configure_threads(args.threads)
    _log_to_stderr()
    node = CentralNode(
        args.bundle,
        Credentials.load(args.credentials),
        args.broker,
        args.out,
        deadline_s=args.deadline,
        topics=Topics(args.prefix),
        ca_certs=args.cafile,
        reset_replay_state=args.reset_replay_state,
        sync_parts=not args.no_fsync,
    )
    node.stop = _stop_on_signals()
    node.decoder.warmup()
    summary = node.run(max_samples=args.samples, duration_s=args.duration)
    print(json.dumps(summary))
    return 0


def cmd_testbed(args: argparse.Namespace) -> int:
    from epic_zoo.deploy.testbed import run_testbed

    run_testbed(
        devices=args.devices,
        links=_names(args.link),
        samples=args.samples,
        models=_names(args.models),
        dataset=args.dataset,
        data=args.data,
        weights=args.weights,
        deadline_s=args.deadline,
        out=args.out,
        workdir=args.workdir,
        ssim_datasets=_names(args.ssim_datasets),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m epic_zoo.deploy",
        description="Run EPIC as a distributed system: edge encoders and a central decoder over MQTT.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "export", help="split a model into per-device encoder and central decoder files"
    )
    p.add_argument(
        "model",
        help="pretrained name (epic.flatvel-a), Hub-format folder, or architecture (untrained)",
    )
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    p.add_argument("--force", action="store_true", help="replace a bundle already in --out")
    p.add_argument(
        "--dataset", default="flatvel-a", help="normalisation of an untrained architecture"
    )
    p.add_argument(
        "--time-stride",
        type=_int_at_least(1),
        default=4,
        help="time decimation of an untrained architecture",
    )
    p.add_argument(
        "--devices", type=_int_at_least(1), default=5, help="devices of an untrained architecture"
    )
    p.add_argument(
        "--seed",
        type=_int_at_least(0, 2**63 - 1),
        default=0,
        help="initialisation seed of an untrained architecture",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("provision", help="create broker credentials and HMAC keys for D devices")
    p.add_argument("--devices", type=_int_at_least(1, 65535), required=True)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the credentials already in --out (every device must get its new file)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for device-k.json, central.json, operator.json",
    )
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("broker", help="run mosquitto with the deployment's passwords and ACLs")
    p.add_argument("--credentials", required=True, type=Path, help="folder written by `provision`")
    p.add_argument("--devices", type=_int_at_least(1, 65535), required=True)
    p.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 for real devices)")
    p.add_argument("--port", type=_int_at_least(1, 65535), default=1883)
    p.add_argument("--prefix", default="epic", help="topic prefix of the deployment")
    p.add_argument(
        "--workdir", type=Path, default=Path("broker"), help="config, persistence and log folder"
    )
    p.add_argument("--cafile", type=Path, default=None, help="TLS: CA certificate")
    p.add_argument("--certfile", type=Path, default=None, help="TLS: the broker's certificate")
    p.add_argument("--keyfile", type=Path, default=None, help="TLS: the broker's private key")
    p.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="size the broker's message limit to this bundle's largest message "
        "(default: a full raw record, the largest any bundle sends)",
    )
    p.add_argument(
        "--message-size-limit",
        type=_int_at_least(64, 256 * 2**20),
        default=None,
        help="largest message, bytes (default: sized to --bundle, or to a full raw record)",
    )
    p.add_argument(
        "--max-queued-messages",
        type=_int_at_least(1),
        default=100_000,
        help="backlog per client (the central's while it is away)",
    )
    p.add_argument(
        "--max-queued-bytes",
        type=_int_at_least(0),
        default=256 * 2**20,
        help="backlog per client in bytes (0: no limit)",
    )
    p.add_argument(
        "--max-inflight-messages",
        type=_int_at_least(1),
        default=100,
        help="QoS 1 messages in flight per client",
    )
    p.add_argument(
        "--autosave-interval",
        type=_int_at_least(1),
        default=1,
        help="seconds between saves of the broker's persistence file",
    )
    p.set_defaults(func=cmd_broker)

    for name, helptext in (("edge", "run end device K"), ("central", "run the central decoder")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "--bundle", required=True, type=Path, help="bundle root or this role's folder in it"
        )
        p.add_argument(
            "--credentials", required=True, type=Path, help="this role's credentials JSON"
        )
        p.add_argument("--broker", type=_address, default=("127.0.0.1", 1883), help="HOST:PORT")
        p.add_argument("--prefix", default="epic", help="topic prefix of the deployment")
        p.add_argument(
            "--samples",
            type=_int_at_least(1),
            default=None,
            help="stop after this many records/maps",
        )
        p.add_argument("--threads", type=_int_at_least(1, 1024), default=1, help="torch threads")
        p.add_argument("--cafile", type=Path, default=None, help="CA certificate: connect with TLS")
    edge = sub.choices["edge"]
    edge.add_argument(
        "--device", type=_int_at_least(0, 65535), required=True, help="device index K"
    )
    src = edge.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--data", type=Path, help="replayed dataset: epic_zoo split folder/shard or .npy [N,5,T,70]"
    )
    src.add_argument("--watch", type=Path, help="folder being filled with {sample_id}.npy records")
    edge.add_argument("--trigger", action="store_true", help="send record i when trigger i arrives")
    edge.add_argument(
        "--interval",
        type=_float_above(0.0, inclusive=True),
        default=0.0,
        help="seconds between records (paced replay)",
    )
    edge.add_argument(
        "--start-at",
        type=_float_above(0.0, inclusive=True),
        default=None,
        help="epoch time of the first paced record",
    )
    edge.add_argument(
        "--first-sample",
        type=_int_at_least(0, 2**64 - 1),
        default=0,
        help="first sample id of a paced replay",
    )
    edge.add_argument(
        "--link", default=None, help="emulate this link profile (wifi, wifi-ac, 4g, nbiot)"
    )
    edge.add_argument(
        "--shared-bucket",
        type=Path,
        default=None,
        help="token-bucket file shared by devices on a shared medium",
    )
    edge.add_argument(
        "--stats", type=Path, default=None, help="write bytes/timing stats JSON here at exit"
    )
    edge.add_argument("--force", action="store_true", help="replace an existing --stats file")
    edge.set_defaults(func=cmd_edge)
    central = sub.choices["central"]
    central.add_argument(
        "--out", required=True, type=Path, help="folder for maps/, timing.jsonl, summary.json"
    )
    central.add_argument(
        "--deadline",
        type=_float_above(0.0),
        default=1.0,
        help="seconds after a sample's first payload before decoding without the missing devices",
    )
    central.add_argument(
        "--duration", type=_float_above(0.0), default=None, help="stop after this many seconds"
    )
    central.add_argument(
        "--reset-replay-state",
        action="store_true",
        help="start a new replay state although --out holds maps and the old one is missing "
        "(captured messages signed with the current keys could then be replayed)",
    )
    central.add_argument(
        "--no-fsync",
        action="store_true",
        help="store received parts without a disk flush each (faster; a killed central still "
        "loses nothing, a power loss may)",
    )
    central.set_defaults(func=cmd_central)

    p = sub.add_parser(
        "testbed", help="broker + central + N edge processes here, measured against the simulator"
    )
    p.add_argument("--devices", type=_int_at_least(1, 70), default=5)
    p.add_argument("--link", default="wifi", help="link profile(s), comma-separated (wifi,4g)")
    p.add_argument(
        "--samples",
        type=_int_at_least(1),
        default=50,
        help="records per phase (latency, then throughput)",
    )
    p.add_argument("--models", default="epic,inversionnet", help="deployed models, comma-separated")
    p.add_argument(
        "--weights",
        default=None,
        help="trained EPIC weights (pretrained name or Hub folder) instead of untrained",
    )
    p.add_argument(
        "--dataset",
        default="flatvel-a",
        help="dataset replayed (tiny profile generated if missing)",
    )
    p.add_argument("--data", type=Path, default=None, help="replay this split instead")
    p.add_argument("--deadline", type=_float_above(0.0), default=2.0, help="central deadline, s")
    p.add_argument("--out", type=Path, default=None, help="write testbed.md, .json and .png here")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep bundles, logs and maps here (default: temporary)",
    )
    p.add_argument(
        "--ssim-datasets",
        default="",
        help="also report SSIM vs devices lost with the trained epic.DATASET weights (comma-separated)",
    )
    p.set_defaults(func=cmd_testbed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one line to stderr and return 1."""
    from epic_zoo.deploy.broker import BrokerError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, BrokerError, ValueError, KeyError, OSError) as err:
        if os.environ.get("EPIC_ZOO_TRACEBACK"):
            raise
        # KeyError's text is the repr of its argument; show the message itself
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {args.command}: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

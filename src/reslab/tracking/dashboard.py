"""`reslab-wandb <dashboard|sync|workspace> <study> [profile=cpu] [dir=wandb] [entity=...]`: the offline W&B runs
of one study and profile (W&B group `<study>/<profile>`), wherever they lie under `dir`.

  dashboard  opens them in W&B's terminal UI, `wandb leet`: the runs listed, their metrics charted, their config
             and summary beside; offline, no account needed.
  sync       uploads them with `wandb sync <run dirs>`.
  workspace  saves one W&B workspace for the study (src/reslab/tracking/workspace.py).

sync and workspace first check, without uploading anything, that there is an API key and that the W&B host
answers; if not, one line and a non-zero exit. Defaults in conf/dashboard.yaml.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from omegaconf import OmegaConf

from reslab import io, options
from reslab.errors import ReslabError, bad_choice, one_line_errors
from reslab.paths import CONF_DIR
from reslab.tracking import offline_runs

ACTIONS = ("dashboard", "sync", "workspace")
WANDB = [sys.executable, "-m", "wandb"]  # the wandb of this interpreter, whatever PATH holds
WORKSPACES = "reslab-workspaces.json"  # in `dir`: the view saved per study, so that a rebuild updates it


def settings() -> dict:
    conf = OmegaConf.merge(
        {"logger": OmegaConf.load(CONF_DIR / "logger" / "wandb.yaml")}, OmegaConf.load(CONF_DIR / "dashboard.yaml")
    )
    return {k: v for k, v in OmegaConf.to_container(conf, resolve=True).items() if k != "logger"}


def show(runs: list[offline_runs.OfflineRun]) -> int:
    """`wandb leet` on a folder of links to the study's runs: given a folder, leet lists the runs directly inside
    it (given one run, it shows that run alone), so the study's runs are gathered, and all selected, in a folder
    of their own; their charts overlay from the start."""
    with tempfile.TemporaryDirectory(prefix="reslab-leet-") as view:
        names = []
        for run in runs:
            link = Path(view) / run.path.name
            if not link.exists():
                link.symlink_to(run.path.resolve(), target_is_directory=True)
                names.append(run.path.name)
        io.write_json(Path(view) / ".wandb-leet.json", {"selected_runs": names})  # leet's own state file
        # The runs are offline: leet, too, sends nothing (no telemetry) when W&B is in offline mode.
        leet = subprocess.Popen([*WANDB, "leet", view], env={**os.environ, "WANDB_MODE": "offline"})
        try:
            while True:
                try:
                    return leet.wait()
                except KeyboardInterrupt:  # the terminal's Ctrl-C reached leet as well: wait until it has quit
                    continue
        finally:
            if leet.poll() is None:
                leet.terminate()
                leet.wait()


def base_url() -> str:
    if url := os.environ.get("WANDB_BASE_URL"):
        return url
    from wandb.sdk.lib.urls import DEFAULT_BASE_URL  # imported only here: importing wandb takes seconds

    return DEFAULT_BASE_URL


def netrc_path() -> Path:
    """The netrc file wandb reads (wandb.sdk.lib.wbauth.wbnetrc): $NETRC, else ~/.netrc, else ~/_netrc."""
    if path := os.environ.get("NETRC"):
        return Path(path).expanduser()
    unix = Path("~/.netrc").expanduser()
    return unix if unix.exists() or not Path("~/_netrc").expanduser().exists() else Path("~/_netrc").expanduser()


def has_api_key() -> bool:
    """A W&B key where wandb looks for one: WANDB_API_KEY, an identity token file, or the netrc entry of the host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    path = netrc_path()
    if not path.is_file():
        return False
    from wandb.sdk.lib.wbauth import read_netrc_auth

    try:
        return read_netrc_auth(host=base_url()) is not None
    except Exception:  # an entry wandb itself refuses (a malformed key, an unreadable file) is no key either
        return False


def reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host (or to the proxy that would carry it) opens within `timeout`
    seconds, the name lookup included."""
    target = urlsplit(url)
    proxy = urllib.request.getproxies().get(target.scheme)
    if proxy and not urllib.request.proxy_bypass(target.hostname or ""):
        target = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = target.port or (443 if target.scheme == "https" else 80)
    opened = []

    def connect():
        try:
            socket.create_connection((target.hostname, port), timeout=timeout).close()
            opened.append(True)
        except (OSError, UnicodeError):
            pass

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(timeout)
    return bool(opened)


def require_wandb(action: str, timeout: float) -> None:
    """One line and no upload when W&B cannot take one: checked before wandb is asked to connect."""
    if not has_api_key():
        raise ReslabError(
            f"{action} needs a W&B API key: run `wandb login` or set WANDB_API_KEY "
            f"(none in the environment nor in {netrc_path()})"
        )
    url = base_url()
    if not reachable(url, timeout):
        raise ReslabError(
            f"{action} needs the W&B server, and {url} does not answer within {timeout:g} s "
            "(no network?); the offline runs stay where they are"
        )


def sync(runs: list[offline_runs.OfflineRun]) -> int:
    return subprocess.run([*WANDB, "sync", *(str(r.path) for r in runs)]).returncode


def publish(runs: list[offline_runs.OfflineRun], group: str, opts: dict) -> int:
    import wandb

    from reslab.tracking import workspace

    entity = opts["entity"] or wandb.Api().default_entity
    flat = any(r.flat_config for r in runs)
    ws = workspace.build(group, entity, opts["project"], flat_config=flat)
    for line in workspace.unlogged(ws, offline_runs.logged_keys(runs)):
        print(f"reslab: warning: {line} is logged by none of the {len(runs)} runs of {group}", file=sys.stderr)
    try:
        url = workspace.save(ws, Path(opts["dir"]) / WORKSPACES)
    except Exception as err:  # the server refused (key, entity, project): its first line says why
        raise ReslabError(f"saving the workspace of {group} failed: {str(err).strip().splitlines()[0]}") from None
    print(f"workspace of {group}: {url}")
    return 0


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="reslab-wandb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("action")
    ap.add_argument("study")
    ap.add_argument("overrides", nargs="*", help="profile=..., dir=..., entity=..., project=...")
    a = ap.parse_args(argv)
    if a.action not in ACTIONS:
        raise bad_choice("action", a.action, ACTIONS)
    conf = settings()
    opts = options.parse(
        a.overrides, {"profile": "cpu", "dir": conf["dir"], "entity": conf["entity"], "project": conf["project"]}
    )
    group = f"{a.study}/{opts['profile']}"
    if a.action != "dashboard":
        require_wandb(f"reslab-wandb {a.action}", float(conf["connect_timeout"]))
    io.exit_cleanly_on_sigterm()  # the leet view's folder of links is removed on SIGTERM too
    runs = offline_runs.select(Path(opts["dir"]), a.study, opts["profile"])
    if a.action == "dashboard":
        try:  # where leet draws: without a terminal, say so in one line rather than leet's own error
            os.close(os.open("/dev/tty", os.O_RDWR))
        except OSError:
            raise ReslabError("reslab-wandb dashboard needs a terminal: wandb leet is a terminal UI") from None
        print(
            f"{len(runs)} offline runs of {group} under {Path(opts['dir']).resolve()}: wandb leet (q quits)", flush=True
        )
        sys.exit(show(runs))
    sys.exit(sync(runs) if a.action == "sync" else publish(runs, group, opts))


if __name__ == "__main__":
    main()

"""The Voila launcher: the suite's offline template is found by Voila and drops the CDN stylesheets."""

from __future__ import annotations

import os

from nbutils.ui import serve


def test_voila_env_puts_the_suite_template_first_and_keeps_the_rest():
    env = serve.voila_env({"JUPYTER_PATH": f"/a{os.pathsep}/b", "X": "1"})
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str(serve.jupyter_data_dir()), "/a", "/b"]
    assert env["X"] == "1"
    assert serve.voila_env({})["JUPYTER_PATH"] == str(serve.jupyter_data_dir())


def test_voila_finds_the_offline_template_built_on_lab(monkeypatch):
    from voila.paths import collect_template_paths

    monkeypatch.setenv("JUPYTER_PATH", serve.voila_env({})["JUPYTER_PATH"])
    paths = collect_template_paths(["voila", "nbconvert"], serve.TEMPLATE, prune=True)
    assert paths[0] == str(serve.jupyter_data_dir() / "voila" / "templates" / serve.TEMPLATE)
    assert any(p.endswith(os.path.join("voila", "templates", "lab")) for p in paths)  # its base template
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), extensions=["jinja2.ext.do"])
    source = env.loader.get_source(env, "index.html.j2")[0]
    assert "extends 'lab/index.html.j2'" in source
    # the lab template it extends does link the CDN: the override is what removes it
    lab = env.loader.get_source(env, "lab/index.html.j2")[0]
    assert "cdn.jsdelivr.net" in lab


def test_voila_command_serves_on_localhost_with_the_template():
    cmd = serve.voila_command("notebooks/90_dashboard.ipynb", 8866, ["--show_tracebacks=True"])
    assert cmd[1:4] == ["-m", "voila", "notebooks/90_dashboard.ipynb"]
    assert "--Voila.ip=127.0.0.1" in cmd and f"--template={serve.TEMPLATE}" in cmd and cmd[-1] == "--show_tracebacks=True"

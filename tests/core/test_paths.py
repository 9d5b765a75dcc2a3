

def test_link_if_identical_links_same_bytes_only(tmp_path):
    import os

    from nbutils.core.paths import link_if_identical

    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    c.write_bytes(b"x" * 999 + b"y")
    assert link_if_identical(b, a) and os.path.samefile(a, b) and b.read_bytes() == b"x" * 1000
    assert not link_if_identical(c, a) and not os.path.samefile(a, c)
    assert not link_if_identical(tmp_path / "missing", a)

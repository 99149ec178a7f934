"""Property-based tests of the CLI's option parsing (hypothesis): whatever a user types
for the numeric and name options of ``galcam predict``, the command either refuses it in
one line with exit status 2 or gets past the option checks; nothing else escapes."""

import pytest

from galcam.cli.main import main

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

OPTIONS = ["--score-threshold", "--class-threshold", "--beam-matching", "--batch-size",
           "--min-classes", "--plane", "--hdu", "--unit", "--rule-class-weight",
           "--instance-step"]

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 10 ** 6).map(str),
    st.sampled_from(["Jy/beam", "mJy/beam", "K", "", "-1", "0", "1e309", "nan", "EXT"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=8),
)


@hypothesis.settings(max_examples=120, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(chosen=st.dictionaries(st.sampled_from(OPTIONS), values, max_size=4))
def test_predict_options_are_refused_in_one_line_or_pass(chosen, tmp_path, capsys):
    radio = tmp_path / "radio.fits"
    radio.write_bytes(b"")  # never read: an existing file as -o stops the run first
    out = tmp_path / "out-is-a-file"
    out.write_text("not a folder")
    argv = ["predict", str(radio), "-o", str(out), "--no-progress", "-q"]
    for option, value in chosen.items():
        argv += [f"{option}={value}"]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: a value of the wrong type
        status = exc.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2, (argv, err)
    # the last line says what is wrong, naming the command; before it, only argparse's
    # usage block (for a value of the wrong type), never a traceback
    assert err and err[-1].startswith("galcam") and "error:" in err[-1], err
    usage = err[:-1]
    assert not usage or (usage[0].startswith("usage:")
                         and all(line.startswith(" ") for line in usage[1:])), err
    assert not any("Traceback" in line for line in err), err
    if "not a folder" in err[-1] or "exists and is not a folder" in err[-1]:
        hypothesis.event("options accepted")
    else:
        hypothesis.event("refused")

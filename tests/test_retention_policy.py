"""The pure retention policy (core/retention.py): edge cases and invariants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightwheels.core.retention import (
    FileRecord,
    Policy,
    ProjectInput,
    make_plan,
    plan_project,
)
from nightwheels.errors import PruneAborted

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)

LINUX = "cp312-cp312-manylinux_2_17_x86_64"
MAC = "cp312-cp312-macosx_11_0_arm64"
OLD_PY = "cp310-cp310-manylinux_2_17_x86_64"


def rec(
    version: str,
    days_ago: float,
    tag: str = LINUX,
    *,
    label: str = "main",
    pinned: bool = False,
    name: str = "demo",
) -> FileRecord:
    return FileRecord(
        id=next(_ids),
        filename=f"{name}-{version}-{tag}.whl",
        version=version,
        uploaded_at=NOW - timedelta(days=days_ago),
        label=label,
        pinned=pinned,
        size=100,
    )


def plan(files: list[FileRecord], force: bool = True, name: str = "demo", **policy):  # type: ignore[no-untyped-def]
    return plan_project(ProjectInput(name, Policy(**policy), tuple(files)), NOW, force=force)


def removed(p) -> set[str]:  # type: ignore[no-untyped-def]
    return {d.file.filename for d in p.removals}


def reasons(p) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {d.file.filename: d.reason for d in p.decisions}


def test_keeps_newest_n_versions_by_upload_time_not_version_string() -> None:
    # Version strings that sort the "wrong" way: upload time decides.
    files = [rec(f"1.0.dev{n}", days_ago=n) for n in range(8)]  # dev0 newest
    files.append(rec("0.1.dev99", days_ago=0.5))  # second newest by upload
    p = plan(files, keep=3)
    kept = {d.file.version for d in p.decisions if not d.remove}
    assert kept == {"1.0.dev0", "0.1.dev99", "1.0.dev1"}
    assert "not among the newest 3" in reasons(p)["demo-1.0.dev5-" + LINUX + ".whl"]


def test_drops_versions_older_than_days_within_keep() -> None:
    files = [rec("1.0.dev3", 1), rec("1.0.dev2", 20), rec("1.0.dev1", 31)]
    p = plan(files, keep=5, days=30)
    assert removed(p) == {files[2].filename}
    assert "last uploaded 31 days ago (limit 30 days)" in reasons(p)[files[2].filename]


def test_version_latest_upload_counts_not_first() -> None:
    # One old and one fresh file of the same version: the version is fresh.
    files = [rec("1.0.dev1", 40, MAC), rec("1.0.dev1", 2, LINUX), rec("1.0.dev2", 1)]
    p = plan(files, keep=5, days=30)
    assert files[1].filename not in removed(p)


def test_never_removes_newest_version_even_when_stale() -> None:
    # A project whose nightly build broke 200 days ago keeps its last version.
    files = [rec("1.0.dev1", 200), rec("1.0.dev0", 300)]
    p = plan(files, keep=5, days=30, tag_days=90)
    assert removed(p) == {files[1].filename}
    assert reasons(p)[files[0].filename] == "newest version"


def test_per_file_ageing_of_a_dropped_tag_within_a_rebuilt_version() -> None:
    # Static version re-uploaded daily for cp312; cp310 stopped 45 days ago. Linux cp312
    # covers its own tag, so the cp310 wheel is the last of *its* tag: kept until tag_days.
    files = [rec("2.0.dev0", 0.1, LINUX), rec("2.0.dev0", 45, OLD_PY)]
    p = plan(files, days=30, tag_days=90)
    assert removed(p) == set()
    assert reasons(p)[files[1].filename].startswith(f"last file of tag {OLD_PY}")
    assert "older than the latest upload of version 2.0.dev0" in reasons(p)[files[1].filename]
    # Beyond the tag window, the tag ages out.
    files = [rec("2.0.dev0", 0.1, LINUX), rec("2.0.dev0", 95, OLD_PY)]
    p = plan(files, days=30, tag_days=90)
    assert removed(p) == {files[1].filename}
    assert "beyond the 90-day tag window" in reasons(p)[files[1].filename]


def test_per_file_ageing_when_a_newer_file_covers_the_same_tag() -> None:
    # Same version, two builds of one tag (different build numbers): the old one ages out.
    old = FileRecord(next(_ids), f"demo-2.0.dev0-1-{LINUX}.whl", "2.0.dev0", NOW - timedelta(40))
    new = FileRecord(next(_ids), f"demo-2.0.dev0-2-{LINUX}.whl", "2.0.dev0", NOW - timedelta(1))
    p = plan([old, new], days=30)
    assert removed(p) == {old.filename}


def test_per_file_ageing_is_relative_to_the_version_not_now() -> None:
    # A stale project: both files 100 days old, 2 days apart. Nothing is per-file stale.
    files = [rec("2.0.dev0", 100, LINUX), rec("2.0.dev0", 102, MAC)]
    assert removed(plan(files, days=30)) == set()


def test_tag_floor_keeps_last_wheel_of_a_platform_after_failed_uploads() -> None:
    # macOS uploads failed for the last 6 versions: the newest macOS wheel stays.
    files = [rec(f"1.0.dev{n}", n, LINUX) for n in range(1, 8)]
    mac = rec("1.0.dev7", 7, MAC)
    files.append(mac)
    p = plan(files, keep=2, days=30, tag_days=90)
    assert mac.filename not in removed(p)
    assert reasons(p)[mac.filename].startswith(f"last file of tag {MAC}")
    # Its linux sibling of the same old version is still removed.
    assert f"demo-1.0.dev7-{LINUX}.whl" in removed(p)


def test_tag_floor_keeps_only_the_newest_file_of_a_tag() -> None:
    files = [rec("1.0.dev1", 1, LINUX)] + [rec(f"1.0.dev{n}", n, MAC) for n in (5, 6, 7)]
    p = plan(files, keep=1)
    assert removed(p) == {files[2].filename, files[3].filename}


def test_tag_floor_covers_compressed_tag_sets() -> None:
    # A py2.py3 wheel covers two tags; a newer py3-only wheel leaves py2 to the old one.
    universal = rec("1.0.dev1", 5, "py2.py3-none-any")
    py3 = rec("1.0.dev2", 1, "py3-none-any")
    p = plan([universal, py3], keep=1)
    assert removed(p) == set()
    assert "py2-none-any" in reasons(p)[universal.filename]


def test_sdists_have_their_own_floor() -> None:
    sdist = FileRecord(next(_ids), "demo-1.0.dev1.tar.gz", "1.0.dev1", NOW - timedelta(3))
    files = [sdist, rec("1.0.dev2", 1)]
    p = plan(files, keep=1)
    assert removed(p) == set()
    assert "tag sdist" in reasons(p)[sdist.filename]


def test_pinned_files_are_kept() -> None:
    files = [rec("1.0.dev2", 1), rec("1.0.dev1", 100, pinned=True), rec("1.0.dev0", 100)]
    p = plan(files, keep=1)
    assert removed(p) == {files[2].filename}
    assert reasons(p)[files[1].filename] == "pinned"


def test_exempt_project_keeps_everything() -> None:
    files = [rec(f"1.0.dev{n}", n * 10) for n in range(10)]
    p = plan(files, keep=1, exempt=True)
    assert removed(p) == set()
    assert all(d.reason == "project is exempt from retention" for d in p.decisions)


def test_labels_are_separate_views() -> None:
    files = [rec("1.0.dev2", 1, label="main"), rec("1.0.dev1", 2, label="main")]
    files += [rec("1.0rc1.dev1", 50, label="rc")]  # old, but the newest of its label
    p = plan(files, keep=1)
    assert removed(p) == {files[1].filename}
    assert reasons(p)[files[2].filename] == "newest version"


def test_share_guard_refuses_without_force() -> None:
    files = [rec(f"1.0.dev{n}", n) for n in range(10)]
    p = plan(files, force=False, keep=2, max_share=0.5)
    assert p.refused and "8 of 10 files (80%)" in p.refused and "--force" in p.refused
    assert p.removals == [] and len(p.proposed) == 8
    forced = plan(files, force=True, keep=2, max_share=0.5)
    assert forced.refused is None and len(forced.removals) == 8


def test_share_guard_boundary_is_inclusive() -> None:
    files = [rec(f"1.0.dev{n}", n) for n in range(4)]
    p = plan(files, force=False, keep=2, max_share=0.5)
    assert p.refused is None and len(p.removals) == 2


def test_share_counts_all_labels_of_the_project() -> None:
    main = [rec(f"1.0.dev{n}", n) for n in range(4)]
    rc = [rec(f"1.0rc{n}", n, label="rc") for n in range(1, 5)]
    p = plan(main + rc, force=False, keep=2, max_share=0.5)
    assert p.refused is None and len(p.removals) == 4  # 4 of 8


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (FileRecord(1, "not-a-wheel.zip", "1.0", NOW), "not a wheel"),
        (FileRecord(1, "demo-1.0-cp312.whl", "1.0", NOW), "invalid wheel filename"),
        (FileRecord(1, f"other-1.0-{LINUX}.whl", "1.0", NOW), "names project 'other'"),
        (FileRecord(1, f"demo-1.0-{LINUX}.whl", "2.0", NOW), "row says version '2.0'"),
        (FileRecord(1, f"demo-1.0-{LINUX}.whl", "1.0", NOW.replace(tzinfo=None)), "time zone"),
        (FileRecord(1, "../demo-1.0-py3-none-any.whl", "1.0", NOW), "path"),
    ],
)
def test_anything_unreadable_aborts_the_whole_plan(record: FileRecord, message: str) -> None:
    good = ProjectInput(
        "aaa", Policy(keep=1), (rec("1.0", 1, name="aaa"), rec("0.9", 50, name="aaa"))
    )
    bad = ProjectInput("demo", Policy(keep=1), (record, rec("0.5", 100)))
    with pytest.raises(PruneAborted, match="nothing was removed") as info:
        make_plan([good, bad], NOW, force=True)
    assert message in info.value.message


@pytest.mark.parametrize(
    "policy",
    [Policy(keep=0), Policy(days=0), Policy(days=30, tag_days=10), Policy(max_share=0)],
)
def test_invalid_policy_aborts(policy: Policy) -> None:
    with pytest.raises(PruneAborted, match="invalid retention policy"):
        plan_project(ProjectInput("demo", policy, (rec("1.0", 1),)), NOW)


def test_duplicate_ids_and_naive_now_abort() -> None:
    r = rec("1.0", 1)
    with pytest.raises(PruneAborted, match="appears twice"):
        plan_project(ProjectInput("demo", Policy(), (r, r)), NOW)
    with pytest.raises(PruneAborted, match="time zone"):
        plan_project(ProjectInput("demo", Policy(), (r,)), NOW.replace(tzinfo=None))


def test_empty_project_and_future_uploads() -> None:
    assert plan([]).decisions == ()
    future = [rec("1.0.dev2", -1), rec("1.0.dev1", 2)]  # clock skew: upload "tomorrow"
    assert removed(plan(future, keep=5)) == set()


def test_equal_upload_times_rank_by_version() -> None:
    files = [rec("1.0.dev1", 3), rec("1.0.dev2", 3), rec("1.0.dev3", 3)]
    p = plan(files, keep=1)
    assert {d.file.version for d in p.decisions if not d.remove} == {"1.0.dev3"}


# -- invariants, over random projects --------------------------------------------------

TAGS = [LINUX, MAC, OLD_PY, "py3-none-any", "py2.py3-none-any"]


@st.composite
def projects(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 30))
    files = []
    for i in range(n):
        version = f"1.0.dev{draw(st.integers(0, 8))}"
        files.append(
            FileRecord(
                id=i + 1,
                filename=f"demo-{version}-{draw(st.integers(1, 3))}-{draw(st.sampled_from(TAGS))}.whl",
                version=version,
                uploaded_at=NOW - timedelta(hours=draw(st.integers(-5, 24 * 200))),
                label=draw(st.sampled_from(["main", "main", "rc"])),
                pinned=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    # filenames are unique among live files of a label
    unique = {(f.label, f.filename): f for f in files}
    policy = Policy(
        keep=draw(st.integers(1, 6)),
        days=draw(st.integers(1, 60)),
        max_share=draw(st.sampled_from([0.2, 0.5, 1.0])),
    )
    policy = Policy(
        policy.keep, policy.days, policy.days + draw(st.integers(0, 90)), policy.max_share
    )
    return ProjectInput("demo", policy, tuple(unique.values()))


@settings(max_examples=300, deadline=None)
@given(projects(), st.booleans())
def test_invariants(project: ProjectInput, force: bool) -> None:
    from packaging.utils import parse_wheel_filename
    from packaging.version import Version

    p = plan_project(project, NOW, force=force)
    gone = {d.file.id for d in p.removals}
    assert len(p.decisions) == len(project.files)
    assert all(d.reason for d in p.decisions)
    # pinned files are never removed
    assert not any(f.pinned and f.id in gone for f in project.files)
    # the share guard
    if not force:
        assert len(gone) <= project.policy.max_share * max(1, len(project.files))
    for label in {f.label for f in project.files}:
        files = [f for f in project.files if f.label == label]
        left = [f for f in files if f.id not in gone]
        # the newest version of every label survives
        newest_time = max(f.uploaded_at for f in files)
        newest = {f.version for f in files if f.uploaded_at == newest_time}
        assert any(f.version in newest for f in left)

        # every tag whose newest file is within the tag window stays covered
        def tags(f: FileRecord) -> set[str]:
            return {str(t) for t in parse_wheel_filename(f.filename)[3]}

        window = timedelta(days=project.policy.tag_days)
        for tag in set().union(*(tags(f) for f in files)):
            newest_of_tag = max(f.uploaded_at for f in files if tag in tags(f))
            if NOW - newest_of_tag <= window:
                assert any(tag in tags(f) for f in left), tag
        # a removal is justified by one of the rules, computed here independently
        latest: dict[str, datetime] = {}
        for f in files:
            latest[f.version] = max(latest.get(f.version, f.uploaded_at), f.uploaded_at)
        order = sorted(latest, key=lambda v: (latest[v], Version(v)), reverse=True)
        days = timedelta(days=project.policy.days)
        for f in files:
            if f.id not in gone:
                continue
            rank = order.index(f.version)
            assert (
                rank >= project.policy.keep
                or (rank > 0 and NOW - latest[f.version] > days)
                or latest[f.version] - f.uploaded_at > days
            )


# -- the parts-wise filename parser equals the full one ---------------------------------

JUNK = ["", "x y", "..", "é", "1.0..0", "-", "a-b"]


@st.composite
def wheel_filenames(draw):  # type: ignore[no-untyped-def]
    parts = [
        draw(st.sampled_from(["demo", "Demo_Pkg", "demo.x", "d_e", "d__e", "other"])),
        draw(st.sampled_from(["1.0", "1.0.dev0", "2!1.0+local", "1.0rc1.post2.dev3", "01.00"])),
    ]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["1", "12abc", "abc", "0"])))
    parts += [
        draw(st.sampled_from(["cp312", "py2.py3", "py3", "pp310", "cp312."])),
        draw(st.sampled_from(["cp312", "none", "abi3", "cp312.abi3"])),
        draw(st.sampled_from(["manylinux_2_17_x86_64.manylinux2014_x86_64", "any", "win_amd64"])),
    ]
    if draw(st.integers(0, 3)) == 0:  # corrupt a part, drop one or add one
        i = draw(st.integers(0, len(parts) - 1))
        how = draw(st.sampled_from(["replace", "drop", "add"]))
        if how == "replace":
            parts[i] = draw(st.sampled_from(JUNK))
        elif how == "drop":
            del parts[i]
        else:
            parts.insert(i, draw(st.sampled_from([*JUNK, "cp311"])))
    suffix = draw(st.sampled_from([".whl"] * 8 + [".tar.gz", ".zip"]))
    return "-".join(parts) + suffix


@settings(max_examples=1000, deadline=None)
@given(wheel_filenames())
def test_partwise_parser_equals_parse_filename(filename: str) -> None:
    from nightwheels.core.filenames import parse_filename
    from nightwheels.core.retention import _parse_filename
    from nightwheels.errors import NightwheelsError

    try:
        dist = parse_filename(filename)
    except NightwheelsError as exc:
        with pytest.raises(NightwheelsError) as info:
            _parse_filename(filename, {})
        assert info.value.message == exc.message
        return
    tags = frozenset(str(t) for t in dist.tags) or frozenset({"sdist"})
    assert _parse_filename(filename, {}) == (dist.name, str(dist.version), tags)

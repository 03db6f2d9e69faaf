"""Layer packages: export, the content hash, missing names, conflicts and renames."""

from __future__ import annotations

import tomllib

import pytest

from profiles import Layer, Library, Profile, compose, load_builtin_library
from profiles.errors import PackageError, UnknownNameError
from profiles.library import parse_layer
from profiles.packages import (
    PackageInfo,
    build_package,
    check_complete,
    layer_source,
    package_toml,
    parse_package,
    parse_renames,
    plan_import,
)
from profiles.probes import Probe

INFO = PackageInfo(name="everything", version="2.1.0", author="Ada", license="CC0-1.0",
                   description="Every built-in profile")


@pytest.fixture(scope="module")
def builtin() -> Library:
    return load_builtin_library()


def test_every_builtin_profile_round_trips_to_the_same_plan(builtin: Library) -> None:
    text = package_toml(build_package(builtin, sorted(builtin.profiles), INFO))
    package = parse_package(text, "everything.cabot.toml")
    imported = package.library()
    assert sorted(imported.profiles) == sorted(builtin.profiles)
    for name, profile in builtin.profiles.items():
        assert imported.profile(name) == profile
        assert compose(imported.stack(profile.layers)) == compose(builtin.stack(profile.layers))
    assert package.info.sha256 == package.content_hash()
    assert package.describe().startswith("everything 2.1.0 by Ada (CC0-1.0): ")


def test_a_profile_brings_its_layers_and_a_layer_what_it_requires(builtin: Library) -> None:
    needy = Layer(name="needy", description="d", requires=("concise",))
    library = builtin.extended([needy])
    package = build_package(library, ["kids", "needy"], INFO)
    assert [p.name for p in package.profiles] == ["kids"]
    assert {layer.name for layer in package.layers} == {*builtin.profile("kids").layers, "needy"}


def test_an_unknown_name_is_refused_with_suggestions(builtin: Library) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'kids'"):
        build_package(builtin, ["kid"], INFO)


def test_the_file_is_plain_toml_with_the_metadata(builtin: Library) -> None:
    data = tomllib.loads(package_toml(build_package(builtin, ["tutor"], INFO)))
    assert data["package"]["format"] == "cabot-package/1"
    assert data["package"]["license"] == "CC0-1.0"
    assert data["profiles"]["tutor"]["layers"] == ["base", "tutor", "concise"]
    assert data["layers"]["concise"]["rules"]["max_reply_chars"] == 600


def test_an_edited_layer_breaks_the_hash_but_reformatting_does_not(builtin: Library) -> None:
    text = package_toml(build_package(builtin, ["kids"], INFO))
    edited = text.replace('"fuck", ', "", 1)
    with pytest.raises(PackageError, match="content hash does not match"):
        parse_package(edited, "kids.cabot.toml")
    reformatted = text.replace(" = ", "=")
    assert parse_package(reformatted, "kids.cabot.toml").info.sha256 is not None
    unhashed = "\n".join(line for line in edited.splitlines() if not line.startswith("sha256"))
    assert parse_package(unhashed, "kids.cabot.toml").info.sha256 is None


def test_bad_packages_name_the_problem() -> None:
    with pytest.raises(PackageError, match=r"no \[package\] table"):
        parse_package("[layers.x]\ndescription = 'd'\n", "p.toml")
    with pytest.raises(PackageError, match=r"\[layers.x\].*sampling.temperature"):
        parse_package("[package]\nname = 'p'\n[layers.x]\ndescription = 'd'\n"
                      "[layers.x.sampling]\ntemperature = 9\n", "p.toml")
    with pytest.raises(PackageError, match="not valid TOML"):
        parse_package("[package", "p.toml")
    with pytest.raises(PackageError, match="no layers and no profiles"):
        parse_package("[package]\nname = 'p'\n", "p.toml")


def test_a_package_naming_layers_nobody_has_is_refused_with_every_name(
        builtin: Library) -> None:
    text = ("[package]\nname = 'p'\n"
            "[layers.mine]\ndescription = 'd'\nrequires = ['ghost']\n"
            "[profiles.mix]\nlayers = ['base', 'mine', 'phantom', 'ghost']\n")
    package = parse_package(text, "p.toml")
    with pytest.raises(PackageError, match=r"2 layers it does not contain.*: ghost, phantom"):
        check_complete(package, builtin.layers, "p.toml")
    check_complete(package, [*builtin.layers, "ghost", "phantom"], "p.toml")


def test_importing_says_what_would_change(builtin: Library) -> None:
    stricter = builtin.layer("concise").model_copy(update={
        "prompt": "One sentence.", "version": "2",
        "rules": builtin.layer("concise").rules.model_copy(update={"max_reply_chars": 300}),
        "probes": (Probe(name="short", prompt="Talk a lot.", max_chars=300),),
    })
    package = build_package(builtin.extended([stricter]), ["tutor"], INFO)
    plan = plan_import(package, builtin, builtin=builtin)
    conflict, = plan.conflicts
    assert conflict.name == "concise" and conflict.builtin
    described = conflict.describe()
    assert "rules.max_reply_chars 600 → 300" in described
    assert "version 1 → 2" in described or "version set to 2" in described
    assert "probes: added" in described
    assert {(i.name, i.status) for i in plan.items} >= {("base", "unchanged"),
                                                         ("tutor", "unchanged")}
    assert [m.name for m in plan.writes] == ["concise"]


def test_renaming_renames_every_reference(builtin: Library) -> None:
    mine = Layer(name="calm", description="calm", conflicts_with=("humor",))
    loud = Layer(name="loud", description="loud", requires=("calm",), conflicts_with=("calm",))
    library = builtin.extended([mine, loud], [Profile(name="zen", layers=("base", "calm"))])
    package = build_package(library, ["zen", "loud"], INFO)
    target = builtin.extended([Layer(name="calm", description="another calm")],
                              [Profile(name="zen", layers=("base",))])
    assert {i.name for i in plan_import(package, target).conflicts} == {"calm", "zen"}
    plan = plan_import(package, target, parse_renames(["calm=calm2", "zen=zen2"]))
    assert plan.conflicts == ()
    layers = {layer.name: layer for layer in plan.layers}
    assert layers["loud"].requires == ("calm2",) and layers["loud"].conflicts_with == ("calm2",)
    assert plan.profiles[0].name == "zen2" and plan.profiles[0].layers == ("base", "calm2")
    assert "renamed from 'calm'" in plan.report()
    with pytest.raises(PackageError, match="nothing called nope"):
        plan_import(package, target, {"nope": "x"})
    with pytest.raises(PackageError, match="not a rename"):
        parse_renames(["calm"])


def test_layer_sources_read_back_as_the_same_layer(builtin: Library) -> None:
    for layer in builtin.layers.values():
        assert parse_layer(layer_source(layer), layer.name) == layer

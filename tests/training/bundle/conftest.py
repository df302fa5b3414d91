"""Hand-made plans over real image files (Pillow) for the bundle writer tests."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from apps.training.plan import (
    BaseModelSpec,
    CaptionEntry,
    CaptionPolicy,
    DatasetEntry,
    ExportSettings,
    ImagePolicy,
    ItemCaption,
    Lineage,
    MethodSpec,
    Partition,
    Plan,
    PlanItem,
    Sample,
    TISpec,
    TypePolicy,
)


def _gradient(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    w, h = size
    r = Image.linear_gradient("L").resize(size)
    g = r.transpose(Image.Transpose.ROTATE_90).resize(size)
    b = Image.new("L", size, 90)
    image = Image.merge("RGB", (r, g, b))
    for x in range(0, w, max(1, w // 7)):  # asymmetric marks so a flip changes the bytes
        image.paste((250, 20, 20), (x, 0, min(w, x + max(1, w // 40)), h // 3))
    return image.convert(mode) if mode != "RGB" else image


def make_images(folder: Path) -> dict[str, Path]:
    """The image zoo: name → file."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def save(name: str, image: Image.Image, **kw: Any) -> None:
        out[name] = folder / name
        image.save(out[name], **kw)

    save("plain.jpg", _gradient((512, 512)), quality=90)
    save("plain.png", _gradient((768, 512)))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpg", _gradient((900, 600)), quality=90, exif=exif.tobytes())
    rgba = _gradient((600, 600)).convert("RGBA")
    rgba.paste((0, 0, 0, 0), (0, 0, 300, 300))
    save("alpha.png", rgba)
    deep = Image.linear_gradient("L").resize((640, 480)).convert("I").point(lambda v: v * 257).convert("I;16")
    save("deep.png", deep)
    save("palette.gif", _gradient((500, 400)).convert("P"))
    save("tiny.jpg", _gradient((64, 64)), quality=90)
    save("large.jpg", _gradient((2000, 1500)), quality=90)
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


POLICY = CaptionPolicy(
    types={
        "trigger": TypePolicy("trigger", zone="prefix", zone_order=0),
        "character": TypePolicy("character", zone="prefix", zone_order=3),
        "general": TypePolicy("general", zone="flex", drop_rate=0.1),
        "quality": TypePolicy("quality", zone="suffix"),
    },
    caption_dropout_rate=0.05,
    alternates={"short": 1},
)


def caption(item_id: str, n: int) -> ItemCaption:
    entries = (
        CaptionEntry("mychar", "trigger", "t:mychar"),
        CaptionEntry("1girl", "character", "t:1girl"),
        CaptionEntry(f"tag{n}", "general", f"t:tag{n}"),
        CaptionEntry("smile, {wink}", "general", "g:smile, {wink}", members=("smile", "{wink}")),
        CaptionEntry("masterpiece", "quality", "t:masterpiece"),
    )
    return ItemCaption(item_id, entries, {"short": (f"a girl number {n}",)})


@dataclasses.dataclass
class PlanFactory:
    images: dict[str, Path]
    logic: Any

    def __call__(
        self,
        *,
        names: list[str] | None = None,
        root: str = "/srv/train/mychar",
        targets: tuple[str, ...] = ("kohya", "onetrainer", "diffusers"),
        images: str = "original",
        mirror: str = "never",
        ti: bool = False,
        reg: tuple[str, ...] = (),
        broken: tuple[str, ...] = (),
        crop: str = "center",
    ) -> Plan:
        names = names or sorted(self.images)
        store: dict[str, Path] = {}
        items: list[PlanItem] = []
        for n, name in enumerate(names):
            path = self.images[name]
            digest = sha(path)
            store[digest] = path
            image = Image.open(path)
            role_reg = name in reg
            partition = (
                "girls--reg" if role_reg else ("mychar--flip" if mirror == "per_item" else "mychar--all")
            )
            if mirror == "per_item" and name in ("alpha.png", "plain.png"):
                partition = "mychar--noflip"
            item = PlanItem(
                id="i" + digest[:12],
                dataset="girls" if role_reg else "mychar",
                partition=partition,
                sha256=digest,
                storage_key="broken" if name in broken else digest,
                width=image.width,
                height=image.height,
                format=str(image.format),
                mode=image.mode,
                has_alpha=image.mode in ("RGBA", "LA"),
                caption=caption("i" + digest[:12], n),
                lineage=Lineage(
                    media_id=n + 1, original_name=name, source_url="https://example.org/x", artist="anon"
                ),
                mirror_ok=partition != "mychar--noflip",
                focus=(0.1, 0.1, 0.5, 0.9) if n % 2 else None,
                repeats=4 if not role_reg else 1,
            )
            items.append(item)
            if partition == "mychar--noflip" and name == "plain.png":
                mid = item.id + "-m"
                items.append(dataclasses.replace(item, id=mid, mirror_of=item.id, caption=caption(mid, n)))
        items.sort(key=lambda i: (i.partition, i.id))

        def open_original(key: str) -> io.BufferedReader | io.BytesIO:
            if key == "broken":
                return io.BytesIO(b"\xff\xd8\xff\xe0 this is not a JPEG at all")
            return open(store[key], "rb")

        partitions = sorted({i.partition for i in items})
        return Plan(
            session_id="sess-7",
            session_name="mychar sd1 lora",
            session_version=3,
            created="2026-12-01T12:00:00Z",
            seed=1234,
            app_version="0.4.0",
            base_model=BaseModelSpec(
                family="sd1",
                profile="sd1-booru",
                source_ref="models/base.safetensors",
                diffusers_ref="runwayml/sd15",
            ),
            method=MethodSpec(batch_size=2),
            image_policy=ImagePolicy(
                resolution=512, bucket_min=256, bucket_max=1024, bucket_step=64, mirror=mirror, crop=crop
            ),  # type: ignore[arg-type]
            caption_policy=POLICY,
            datasets=[
                DatasetEntry("mychar", "My character", repeats=4, licence="CC-BY-4.0"),
                DatasetEntry("girls", "Girls", role="regularization", class_tokens="1girl"),
            ],
            partitions=[
                Partition(
                    p,
                    dataset="girls" if p.startswith("girls") else "mychar",
                    role="regularization" if "--reg" in p else "train",
                    flip=True if p.endswith("--flip") else (False if p.endswith("--noflip") else None),
                    repeats=1 if "--reg" in p else 4,
                )
                for p in partitions
            ],
            targets=list(targets),  # type: ignore[arg-type]
            export=ExportSettings(target_root=root, images=images),  # type: ignore[arg-type]
            items=lambda: iter(items),
            open_original=open_original,
            textual_inversion=TISpec("mychr", "girl", resolution=256) if ti else None,
            samples=[Sample("mychar, 1girl", width=512, height=512)],
            item_count=len(items),
        )


@pytest.fixture(scope="session")
def image_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_images(tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def logic() -> Any:
    from apps.training.bundle.context import load_logic

    return load_logic()


@pytest.fixture
def make_plan(image_zoo: dict[str, Path], logic: Any) -> Callable[..., Plan]:
    return PlanFactory(image_zoo, logic)


@pytest.fixture
def export(logic: Any, tmp_path: Path) -> Callable[..., Path]:
    """Write a plan into a fresh folder the way the export job does; returns the folder."""
    from apps.training.bundle.writer import write_bundle

    counter = iter(range(1000))

    def run(plan: Plan, **kw: Any) -> Path:
        dest = tmp_path / f"bundle{next(counter)}"
        dest.mkdir()
        write_bundle(plan, dest, logic=logic, **kw)
        return dest

    return run

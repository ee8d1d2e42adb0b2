"""The built-in synthetic scenes: exact z-depth, determinism, split hygiene, learnable cues, preview/CLI."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from probe.data import dataset_info, get_dataset, list_datasets
from probe.data import synthetic as S
from probe.data.preview import dataset_rows, preview_samples
from probe.errors import ProbeError

FRAME = (48, 64)
GRID = (24, 32)


CHECKERS = S.Material((0.6, 0.4, 0.2), "checkers", 0.5, 0.3)


def _scene(*shapes: S.Shape, room=(100.0, 100.0, 20.0), position=(50.0, 50.0, 2.0), yaw=0.0, pitch=0.0, roll=0.0,
           light=S.PointLight((50.0, 90.0, 10.0), 1.0, 5.0), material=CHECKERS):
    """A big room (walls far outside the view) with extra shapes, seen by a 60-degree camera."""
    camera = S.PinholeCamera.looking(position, yaw=yaw, pitch=pitch, roll=roll, hfov_deg=60.0)
    all_shapes = (S.Room(room), *shapes)
    n_faces = sum(s.n_faces for s in all_shapes)
    return S.Scene(camera, all_shapes, (material,) * n_faces, light, 0.2)


def _plane_coordinates(size, frame, focal):
    h, w = size
    xs = ((np.arange(w) + 0.5) / w - 0.5) / focal
    ys = ((np.arange(h) + 0.5) / h - 0.5) * (frame[0] / frame[1]) / focal
    return xs, ys


# --- camera ------------------------------------------------------------------------------------


@pytest.mark.parametrize("yaw,pitch,roll", [(0.0, 0.0, 0.0), (1.0, -0.3, 0.05), (4.0, 0.2, -0.08)])
def test_camera_rotation_is_proper_and_forward_is_the_optical_axis(yaw, pitch, roll):
    cam = S.PinholeCamera.looking((0.0, 1.5, 0.0), yaw, pitch, roll, hfov_deg=60.0)
    R = cam.rotation
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    forward = [math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)]
    np.testing.assert_allclose(R[:, 2], forward, atol=1e-12)
    assert (R[1, 1] < 0) == (abs(roll) < math.pi / 2)  # image "down" points down in the world when level-ish
    assert cam.focal == pytest.approx(0.5 / math.tan(math.radians(30.0)))


# --- exact z-depth -----------------------------------------------------------------------------


@pytest.mark.parametrize("roll", [0.0, 0.3])
def test_z_depth_of_a_fronto_parallel_wall_is_constant(roll):
    # wall z = 20, camera at z = 2: every pixel is 18 m away along the optical axis, though its ray is longer
    depth = S.render_depth(_scene(roll=roll), GRID, FRAME)
    np.testing.assert_allclose(depth, 18.0, rtol=1e-6)


def test_floor_depth_follows_the_perspective_formula():
    height = 1.5
    scene = _scene(room=(400.0, 10.0, 400.0), position=(200.0, height, 200.0))
    depth = S.render_depth(scene, GRID, FRAME)
    _, ys = _plane_coordinates(GRID, FRAME, scene.camera.focal)
    expected = np.where(ys > 0, height / np.where(ys > 0, ys, 1.0), np.inf)  # z = h / (y/z) below the horizon
    floor_rows = expected < 150.0
    assert floor_rows.sum() >= 8
    for i in np.flatnonzero(floor_rows):
        np.testing.assert_allclose(depth[i], expected[i], rtol=1e-5)  # the same in every column: z, not ray length


def test_sphere_depth_matches_the_quadratic_root():
    centre, radius = np.array([50.5, 49.7, 9.0]), 2.0
    scene = _scene(S.Sphere(tuple(centre), radius))
    depth = S.render_depth(scene, GRID, FRAME)
    xs, ys = _plane_coordinates(GRID, FRAME, scene.camera.focal)
    d = np.einsum("kc,hwc->hwk", scene.camera.rotation, np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], 1.0), -1))
    oc = np.array(scene.camera.position) - centre
    a, b, c = (d * d).sum(-1), (d * oc).sum(-1), oc @ oc - radius**2
    disc = b * b - a * c
    hit = disc >= 0
    t = (-b - np.sqrt(np.where(hit, disc, 0.0))) / a
    assert 20 < hit.sum() < hit.size
    np.testing.assert_allclose(depth[hit], t[hit], rtol=1e-5)
    np.testing.assert_allclose(depth[~hit], 18.0, rtol=1e-6)


def test_box_front_face_and_cylinder_side_have_analytic_depth():
    box = S.Box((49.0, 49.0, 6.0), (51.0, 51.0, 7.0))
    depth = S.render_depth(_scene(box), (31, 41), FRAME)
    np.testing.assert_allclose(depth[12:19, 16:25], 4.0, rtol=1e-6)
    cylinder = S.Cylinder((50.0, 8.0), 1.0, 60.0)
    depth = S.render_depth(_scene(cylinder), (31, 41), FRAME)
    np.testing.assert_allclose(depth[:, 20], 5.0, rtol=1e-6)  # the centre column (odd width) meets the side head on


def test_wall_image_is_checker_albedo_times_lambertian_irradiance():
    # the sun shines straight at the far wall z = 20 (inward normal -z): irradiance = ambient + power everywhere
    scene = _scene(light=S.SunLight((0.0, 0.0, -1.0), 0.5))
    image = S.render_image(scene, GRID)
    assert image.shape == (*GRID, 3) and image.dtype == np.float32
    xs, ys = _plane_coordinates(GRID, GRID, scene.camera.focal)
    d = np.einsum("kc,hwc->hwk", scene.camera.rotation, np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], 1.0), -1))
    p = np.array(scene.camera.position) + 18.0 * d
    u, v = (p[..., 0] + p[..., 2]) / CHECKERS.cell, p[..., 1] / CHECKERS.cell  # wall coordinates: (x + z, y)
    pattern = (np.floor(u) + np.floor(v)) % 2
    expected = np.array(CHECKERS.colour) * (1 - CHECKERS.contrast * pattern)[..., None] * (0.2 + 0.5)
    clear = (np.abs(u - np.round(u)) > 1e-3) & (np.abs(v - np.round(v)) > 1e-3)  # away from cell edges
    assert clear.mean() > 0.9 and 0 < pattern[clear].mean() < 1
    np.testing.assert_allclose(image[clear], expected[clear], rtol=1e-5)


def test_point_light_irradiance_falls_off_with_distance_and_cosine():
    plain = S.Material((0.5, 0.8, 0.3), "noise", 1.0, 0.0)
    light = S.PointLight((50.0, 50.0, 10.0), 0.9, 4.0)
    image = S.render_image(_scene(light=light, material=plain), (31, 41))
    # the centre ray meets the far wall at (50, 50, 20), 10 m straight in front of the light
    expected = np.array(plain.colour) * (0.2 + 0.9 / (1 + (10.0 / 4.0) ** 2))
    np.testing.assert_allclose(image[15, 20], expected, rtol=1e-5)
    assert np.all(image[15, :20].sum(-1) < image[15, 20].sum())  # farther from the light and more oblique


@pytest.mark.parametrize("name", ["synthetic", "synthetic_outdoor"])
def test_region_culling_gives_the_brute_force_depth(name):
    ds = get_dataset(name, length=8)
    for i in range(len(ds)):
        scene = ds.scene(i)
        size = (60, 80) if i < 2 else GRID
        rays = scene.camera.rays(size, FRAME)
        brute = np.full(size, np.inf, np.float32)
        for shape in scene.shapes:
            np.minimum(brute, shape.intersect(rays, faces=False)[0], out=brute)
        np.testing.assert_array_equal(S.render_depth(scene, size, FRAME), brute)
        np.testing.assert_array_equal(S.cast(scene, size, FRAME, faces=True).t, brute)


# --- dataset contract --------------------------------------------------------------------------


def test_registered_info_matches_the_contract():
    for name, cap, protocol in (("synthetic", 10.0, "nyu"), ("synthetic_outdoor", 80.0, "kitti")):
        info = dataset_info(name)
        assert name in list_datasets()
        assert info.input_size == (240, 320) and info.depth_scale == 0.5 and info.depth_size() == (120, 160)
        assert info.max_depth == cap and info.eval_protocol == protocol
        assert not info.needs_root and info.source == "built in"


@pytest.mark.parametrize("name", ["synthetic", "synthetic_outdoor"])
def test_items_follow_the_contract(name):
    ds = get_dataset(name, split="test", input_size=FRAME, length=6)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, *FRAME) and item["image"].dtype == torch.float32
        assert item["depth"].shape == (1, *GRID) and item["valid"].shape == (1, *GRID)
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0 and item["image"].std() > 0.01
        assert torch.equal(item["valid"], item["depth"] > 0)
        assert item["name"] == f"{name}/test/seed0/{i}"
        raw = ds.load_raw(i)
        assert raw.depth.shape == GRID  # rendered at the target grid: the base class does not resize it
        np.testing.assert_array_equal(item["depth"][0].numpy(), np.where(item["valid"][0].numpy(), raw.depth, 0.0))


def test_indoor_depth_is_finite_everywhere_and_within_range():
    ds = get_dataset("synthetic", input_size=FRAME, length=40)
    for i in range(len(ds)):
        depth = ds.load_raw(i).depth
        assert np.all(np.isfinite(depth))  # every ray meets the room
        assert depth.min() >= ds.info.min_depth
    valid_fraction = np.mean([ds[i]["valid"].float().mean().item() for i in range(len(ds))])
    assert valid_fraction > 0.97  # only corners of the biggest rooms lie beyond 10 m


def test_outdoor_sky_has_no_depth_and_is_invalid():
    ds = get_dataset("synthetic_outdoor", input_size=FRAME, length=12)
    sky_images = 0
    for i in range(len(ds)):
        raw, item = ds.load_raw(i), ds[i]
        sky = np.isinf(raw.depth)
        sky_images += sky[: GRID[0] // 3].any()
        assert not item["valid"][0].numpy()[sky].any()
        assert np.all(raw.depth[~sky] >= ds.info.min_depth)
        assert np.all(raw.depth[GRID[0] - 1] < 80.0)  # the bottom row is nearby ground
    assert sky_images >= len(ds) // 2


def test_any_size_renders():
    for size in ((37, 53), (2, 2), (64, 48)):
        ds = get_dataset("synthetic", input_size=size, length=2)
        item = ds[1]
        assert item["image"].shape == (3, *size)
        assert item["depth"].shape == (1, *ds.info.depth_size(size))


def test_length_option_and_defaults():
    assert len(get_dataset("synthetic")) == 2000 and len(get_dataset("synthetic", split="test")) == 200
    ds = get_dataset("synthetic_outdoor", length=5)
    assert len(ds) == 5
    with pytest.raises(IndexError):
        ds[5]
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ProbeError, match="length"):
            get_dataset("synthetic", length=bad)
    with pytest.raises(ProbeError, match="unknown option.*lenght"):
        get_dataset("synthetic", lenght=5)
    with pytest.raises(ProbeError, match="seed"):
        get_dataset("synthetic", seed=1.5)


# --- determinism and splits ----------------------------------------------------------------------


def _digest(item) -> str:
    return hashlib.sha256(item["image"].numpy().tobytes() + item["depth"].numpy().tobytes()).hexdigest()


def test_same_seed_and_index_give_the_same_bytes():
    a = get_dataset("synthetic", input_size=FRAME, length=4, seed=7)
    b = get_dataset("synthetic", input_size=FRAME, length=4, seed=7)
    for i in range(4):
        assert _digest(a[i]) == _digest(a[i]) == _digest(b[i])
    other = get_dataset("synthetic", input_size=FRAME, length=4, seed=8)
    assert all(_digest(a[i]) != _digest(other[i]) for i in range(4))


# Recorded from the still-image generator before the video datasets reused its caster (numpy 2.4.6):
# any change to the casting, shading or scene draws shows up here.
GOLDEN = {
    ("synthetic", "train"): "0dc181db2063beef651c344291baca77570a81a30a6431a35835e09807f7f5dc",
    ("synthetic", "test"): "87b45dc29e60e7f0ffca10866ac883e1e801a23d4825fedb2ec5e86105997de1",
    ("synthetic_outdoor", "train"): "9f063c24f4ee1670dd31996643bc4de7e5cefc4f591752bd3eca12b7d4ef13cc",
    ("synthetic_outdoor", "test"): "90581675177ca348f01c1ad5471b4f7109782fd70b52a7f1474c93f8b54a255a",
}


@pytest.mark.parametrize("name,split", sorted(GOLDEN))
def test_still_images_are_bit_identical_to_the_recorded_ones(name, split):
    ds = get_dataset(name, split=split, input_size=FRAME, length=3, seed=7)
    digest = hashlib.sha256()
    for i in range(3):
        digest.update(ds[i]["image"].numpy().tobytes())
        digest.update(ds[i]["depth"].numpy().tobytes())
    assert digest.hexdigest() == GOLDEN[(name, split)], f"rendered bytes changed (numpy {np.__version__})"


def test_dataloader_workers_render_the_same_bytes():
    ds = get_dataset("synthetic_outdoor", input_size=(24, 32), length=4, seed=3)
    direct = [_digest(ds[i]) for i in range(len(ds))]
    loaded = []
    for batch in DataLoader(ds, batch_size=1, num_workers=2, shuffle=False):
        loaded.append(_digest({"image": batch["image"][0], "depth": batch["depth"][0]}))
    assert loaded == direct


@pytest.mark.parametrize("name", ["synthetic", "synthetic_outdoor"])
def test_train_and_test_splits_never_share_scenes(name):
    train = get_dataset(name, split="train", length=300)
    test = get_dataset(name, split="test", length=300)
    poses = {split: {ds.scene(i).camera.position for i in range(len(ds))} for split, ds in (("train", train), ("test", test))}
    assert len(poses["train"]) == len(poses["test"]) == 300  # distinct scenes within a split, too
    assert not poses["train"] & poses["test"]
    images = {split: {_digest(get_dataset(name, split=split, input_size=(12, 16), length=20)[i]) for i in range(20)}
              for split in ("train", "test")}
    assert not images["train"] & images["test"]


# --- textures ------------------------------------------------------------------------------------


def test_textures_are_periodic_patterns_in_unit_range():
    rng = np.random.default_rng(0)
    u = rng.uniform(-50, 50, 2000).astype(np.float32)
    v = rng.uniform(-50, 50, 2000).astype(np.float32)
    for name in ("checkers", "stripes", "noise"):
        pattern = S.TEXTURES.get(name)(u, v)
        assert pattern.dtype == np.float32 and pattern.min() >= 0.0 and pattern.max() <= 1.0 and pattern.std() > 0.1
    np.testing.assert_array_equal(S.checkers(u + 2, v), S.checkers(u, v))
    np.testing.assert_array_equal(S.checkers(u + 1, v), 1.0 - S.checkers(u, v))
    np.testing.assert_array_equal(S.stripes(u, v + 0.37), S.stripes(u, v))
    period = S.NOISE_TILE_CELLS
    np.testing.assert_array_equal(S.value_noise(u + period, v - period), S.value_noise(u, v))


# --- learnable cues ------------------------------------------------------------------------------


class _TinyDepthNet(nn.Module):
    """Four stride-2 conv blocks and a three-step decoder with skips: [B,3,48,64] -> [B,1,24,32] metres."""

    def __init__(self, c: int, scale: float) -> None:
        super().__init__()

        def block(i: int, o: int, s: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(i, o, 3, s, 1), nn.BatchNorm2d(o), nn.ReLU())

        self.scale = scale
        self.e1, self.e2, self.e3, self.e4 = block(3, c, 2), block(c, 2 * c, 2), block(2 * c, 3 * c, 2), block(3 * c, 4 * c, 2)
        self.d3, self.d2 = block(7 * c, 3 * c, 1), block(5 * c, 2 * c, 1)
        self.out = nn.Conv2d(3 * c, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def up(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=False), b], 1)

        f1 = self.e1(x)
        f2 = self.e2(f1)
        f3 = self.e3(f2)
        y = self.d3(up(self.e4(f3), f3))
        y = self.d2(up(y, f2))
        return torch.exp(self.out(up(y, f1))) * self.scale


def _stack(ds):
    items = [ds[i] for i in range(len(ds))]
    return tuple(torch.stack([it[k] for it in items]) for k in ("image", "depth", "valid"))


@pytest.mark.parametrize("name,train_items,steps,width,bound", [("synthetic", 512, 200, 12, 0.7),
                                                                 ("synthetic_outdoor", 256, 100, 8, 0.6)])
def test_a_small_convnet_learns_depth_far_better_than_a_constant(name, train_items, steps, width, bound):
    torch.manual_seed(0)
    image, depth, valid = _stack(get_dataset(name, split="train", input_size=FRAME, length=train_items))
    test_image, test_depth, test_valid = _stack(get_dataset(name, split="test", input_size=FRAME, length=64))
    constant = depth[valid].median()
    net = _TinyDepthNet(width, float(constant))
    optimiser = torch.optim.Adam(net.parameters(), 3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1 - k / steps)
    order = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(0, len(image), (32,), generator=order)
        loss = (net(image[batch]) - depth[batch]).abs()[valid[batch]].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    net.eval()
    with torch.no_grad():
        model_l1 = (net(test_image) - test_depth).abs()[test_valid].mean()
    constant_l1 = (constant - test_depth).abs()[test_valid].mean()
    assert model_l1 < bound * constant_l1, f"L1 {model_l1:.3f} m vs constant {constant_l1:.3f} m"


# --- preview and CLI -----------------------------------------------------------------------------


def test_preview_samples_mark_invalid_depth_as_nan():
    ds = get_dataset("synthetic_outdoor", input_size=(24, 32), length=5)
    samples = preview_samples(ds, count=3, seed=1)
    assert len(samples) == 3 and len({s.name for s in samples}) == 3
    for s in samples:
        item = ds[int(s.name.rsplit("/", 1)[1])]
        assert s.image.shape == (24, 32, 3)
        np.testing.assert_array_equal(np.isnan(s.depth), ~item["valid"][0].numpy())
    assert len(preview_samples(ds, count=50)) == 5
    with pytest.raises(ProbeError, match="--count"):
        preview_samples(ds, count=0)


def test_dataset_rows_show_generated_data_as_found():
    rows = {r.name: r for r in dataset_rows(None)}
    assert set(rows) == set(list_datasets())
    assert rows["synthetic"].found and rows["synthetic"].max_depth == 10.0 and rows["synthetic"].input_size == (240, 320)


def test_cli_datasets_and_preview(run_cli, tmp_path):
    res = run_cli("datasets")
    assert res.code == 0 and "synthetic_outdoor" in res.out and "built in" in res.out
    out = tmp_path / "preview.png"
    res = run_cli("data", "preview", "synthetic", "--count", "2", "--split", "test", "--option", "length=4",
                  "--input-size", "24x32", "--out", out)
    assert res.code == 0, res
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run_cli("data", "preview", "synthetic", "--out", tmp_path / "preview.jpg")
    assert res.code == 2 and "--out" in res.err

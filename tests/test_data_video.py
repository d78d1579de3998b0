"""Video primitives and the NoScope-style task on a clip written here with PyAV (exactly known labels)."""

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from video_clips import wrap_ts_timestamps

from foldedcnn.cli import main
from foldedcnn.data import load_data
from foldedcnn.data._video_seek import located
from foldedcnn.data.noscope import (
    assign_splits,
    box_overlap,
    build_video_task,
    read_noscope_labels,
    save_video_task,
)
from foldedcnn.data.types import DataError
from foldedcnn.data.video import (
    VideoError,
    VideoIndex,
    check_roi,
    crop_resize,
    frames_at,
    index_video,
    iter_frames,
    probe_and_index,
    probe_video,
    region_rgb,
)

W, H, N = 160, 128, 60
ROI = (64, 40, 48, 48)  # x, y, w, h
INSIDE = set(range(20, 30)) | set(range(45, 52))  # frames where the square is in the region


def square_position(i: int) -> tuple[int, int]:
    """Top-left of the 20x20 square in frame i: wandering inside the region for INSIDE (a still object
    would become background to MOG2), else far left or right of it."""
    if i in INSIDE:
        return 64 + (i * 7) % 29, 40 + (i * 11) % 29
    return (4 + i % 20, 10) if i % 2 else (130, 90 - i % 15)


def write_clip(path, frames=N, codec="ffv1", container="matroska"):
    """A lossless clip: a fixed textured background and a white square moving in and out of ROI."""
    rng = np.random.default_rng(0)
    background = (rng.integers(40, 90, (H // 8, W // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1))
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p" if codec == "ffv1" else "yuv420p"
        for i in range(frames):
            img = background.copy()
            x, y = square_position(i)
            img[y : y + 20, x : x + 20] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mkv")


def test_probe_and_iter_frames(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.fps) == (W, H, 10.0)
    frames = list(iter_frames(clip))
    assert [f.index for f in frames] == list(range(N))
    assert frames[0].rgb.shape == (H, W, 3) and frames[0].rgb.dtype == np.uint8
    assert frames[1].time_s == pytest.approx(0.1)
    assert [f.index for f in iter_frames(clip, stride=7)] == list(range(0, N, 7))



def test_frames_at_gives_the_same_pixels_as_iter_frames(clip):
    every = list(iter_frames(clip))
    picked = frames_at(clip, [7, 2, 7, N + 5])  # unordered, repeated, and past the end
    assert [f.index for f in picked] == [2, 7]
    for f in picked:
        assert f.time_s == every[f.index].time_s and np.array_equal(f.rgb, every[f.index].rgb)
    assert frames_at(clip, []) == []
    with pytest.raises(VideoError, match="not found"):
        frames_at(clip.with_name("missing.mkv"), [0])


def test_oracle_labels_are_exact_and_splits_contiguous(clip, tmp_path):
    task = build_video_task(clip, ROI, warmup=15)
    expected = np.array([i in INSIDE for i in range(N)], dtype=np.int64)
    np.testing.assert_array_equal(task.labels, expected)
    assert task.images.shape == (N, 3, 50, 50) and task.images.dtype == np.uint8
    assert task.split("val").tolist() == list(range(36, 48)) and task.meta["split_mode"] == "contiguous"
    assert task.balance()["train"] == {"images": 36, "positive": 10, "negative": 26}
    out = save_video_task(task, tmp_path / "task")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["roi"] == list(ROI) and meta["class_names"] == ["no person", "person"]
    val = load_data(f"npz:{out}", "val")
    assert val.source["frame_size"] == [W, H]  # recorded in checkpoints: the job notes a video of another size
    assert val.images.shape == (12, 3, 50, 50) and val.labels.tolist() == expected[36:48].tolist()
    # A positive crop shows the white square; a negative one only background.
    assert task.images[25].max() == 255 and task.images[0].max() < 120


def test_noscope_csv_labels(clip, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("frame,object_name,confidence,xmin,ymin,xmax,ymax\n3,car,0.9,0,0,1,1\n3,person,0.8,0,0,1,1\n"
                   "7,car,0.9,0,0,1,1\n59,person,0.7,0,0,1,1\n")
    assert np.nonzero(read_noscope_labels(csv, "car", N))[0].tolist() == [3, 7]
    task = build_video_task(clip, ROI, labels_csv=csv, object_name="person", stride=2)
    assert task.frame_index.tolist() == list(range(0, N, 2))
    assert task.labels.sum() == 0  # frames 3 and 59 are odd: stride 2 skips them
    csv.write_text("frame,object_name\n4,person\n")
    assert build_video_task(clip, ROI, labels_csv=csv, stride=2).labels.tolist()[2] == 1


def test_cli_video_on_a_user_clip(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", "video", str(clip), "--roi", *map(str, ROI), "--out", str(out),
                 "--preview", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    assert "positive" in text and "train" in text
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.npz", "train.npz", "val.npz"]


def test_assign_splits_contiguous_and_blocks():
    assert assign_splits(10).tolist() == [0] * 6 + [1] * 2 + [2] * 2
    blocks = assign_splits(27, mode="blocks", block_frames=5)  # 60/20/20 deals T V T E T, then again
    assert blocks.tolist() == [0] * 5 + [1] * 5 + [0] * 5 + [2] * 5 + [0] * 5 + [0, 0]
    with pytest.raises(DataError, match="applies to split mode 'blocks'"):
        assign_splits(10, block_frames=5)
    with pytest.raises(DataError, match="needs block_frames >= 1"):
        assign_splits(10, mode="blocks")
    with pytest.raises(DataError, match="split mode must be one of contiguous, blocks"):
        assign_splits(10, mode="random")


@given(n=st.integers(1, 400), block=st.integers(1, 30),
       fractions=st.sampled_from([(0.6, 0.2, 0.2), (0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0)]))
def test_blocks_keep_every_frame_and_the_shares(n, block, fractions):
    ids = assign_splits(n, fractions, "blocks", block)
    assert ids.shape == (n,) and set(ids.tolist()) <= {0, 1, 2}
    starts = ids.reshape(-1)[::block]
    assert all((ids[i * block:(i + 1) * block] == s).all() for i, s in enumerate(starts))  # whole blocks
    counts = np.bincount(starts, minlength=3)
    assert np.all(np.abs(counts - np.asarray(fractions) * len(starts)) <= 1)  # each split within one block


def test_csv_boxes_count_only_when_they_overlap_the_region(clip, tmp_path):
    roi = ROI  # x 64..112, y 40..88
    assert box_overlap((70, 50, 90, 70), roi) == 1.0 and box_overlap((0, 0, 20, 20), roi) == 0.0
    assert box_overlap((54, 50, 74, 70), roi) == 0.5
    csv = tmp_path / "boxes.csv"
    csv.write_text("frame,object_name,confidence,xmin,ymin,xmax,ymax\n"
                   "2,person,0.9,70,50,90,70\n"     # inside the region
                   "4,person,0.9,0,0,20,20\n"       # outside it: not a positive crop
                   "6,person,0.9,54,50,74,70\n")    # half inside
    assert np.flatnonzero(read_noscope_labels(csv, "person", 10)).tolist() == [2, 4, 6]  # no region: frame-level
    assert np.flatnonzero(read_noscope_labels(csv, "person", 10, roi)).tolist() == [2, 6]  # default 0.5
    assert np.flatnonzero(read_noscope_labels(csv, "person", 10, roi, min_overlap=0.6)).tolist() == [2]
    task = build_video_task(clip, roi, labels_csv=csv, min_overlap=0.6)
    assert np.flatnonzero(task.labels).tolist() == [2] and task.meta["min_overlap"] == 0.6
    csv.write_text("frame,object_name,xmin,ymin,xmax,ymax\n3,person,70,50,70,60\n")
    with pytest.raises(DataError, match="line 2: box .* has no area"):
        read_noscope_labels(csv, "person", 10, roi)
    with pytest.raises(DataError, match=r"min_overlap must be in \(0, 1\]"):
        read_noscope_labels(csv, "person", 10, roi, min_overlap=0)


def test_a_split_without_positives_is_an_error_unless_allowed(clip, tmp_path, capsys):
    csv = tmp_path / "early.csv"  # the person is seen in frames 0-9 only: val and test get no positives
    csv.write_text("frame,object_name\n" + "".join(f"{i},person\n" for i in range(10)))
    task = build_video_task(clip, ROI, labels_csv=csv)
    assert task.balance()["val"] == {"images": 12, "positive": 0, "negative": 12}
    with pytest.raises(DataError, match="the val split has no positive frames .* --split-mode blocks"):
        save_video_task(task, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    argv = ["data", "video", str(clip), "--roi", *map(str, ROI), "--labels", str(csv)]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 2
    captured = capsys.readouterr()
    assert "class balance" in captured.out and "positive_share" in captured.out  # the table comes first
    assert "the val split has no positive frames" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert main([*argv, "--out", str(tmp_path / "allowed"), "--allow-empty-class"]) == 0
    assert json.loads((tmp_path / "allowed" / "meta.json").read_text())["balance"]["test"]["positive"] == 0
    # blocks already asked for: the fix is smaller blocks
    assert main([*argv, "--out", str(tmp_path / "big"), "--split-mode", "blocks", "--block-frames", "30"]) == 2
    assert "try fewer --block-frames than 30" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "blocks"), "--split-mode", "blocks", "--block-frames", "2"]) == 0
    balance = json.loads((tmp_path / "blocks" / "meta.json").read_text())["balance"]
    assert [balance[s]["positive"] for s in ("train", "val", "test")] == [6, 2, 2]
    assert sum(b["images"] for b in balance.values()) == N


def test_crop_resize_and_roi_checks():
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[40:88, 64:112] = (10, 20, 30)
    crop = crop_resize(rgb, ROI, (50, 50))
    assert crop.shape == (3, 50, 50) and crop.dtype == np.uint8
    assert crop[:, 10, 10].tolist() == [10, 20, 30]
    assert check_roi([0, 0, W, H], W, H) == (0, 0, W, H)
    for roi in [(150, 0, 20, 20), (-1, 0, 10, 10), (0, 0, 0, 5), (0, 120, 10, 10)]:
        with pytest.raises(VideoError, match="outside|empty"):
            crop_resize(rgb, roi, (50, 50))


def test_bad_videos_give_clear_errors(tmp_path, clip):
    with pytest.raises(VideoError, match="not found"):
        list(iter_frames(tmp_path / "missing.avi"))
    text = tmp_path / "notes.avi"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot read .* as a video"):
        probe_video(text)
    empty = tmp_path / "empty.avi"
    with av.open(str(empty), "w", format="avi") as out:  # a header and a stream, no frames
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        out.start_encoding()
    with pytest.raises(VideoError, match="has no decodable frames"):
        list(iter_frames(empty))
    (tmp_path / "zero.avi").write_bytes(b"")
    with pytest.raises(VideoError, match="is empty"):
        probe_video(tmp_path / "zero.avi")
    with pytest.raises(VideoError, match="outside"):
        build_video_task(clip, (150, 100, 40, 40))
    with pytest.raises(VideoError, match="stride"):
        list(iter_frames(clip, stride=0))


def test_truncated_video_yields_frames_then_may_raise(tmp_path):
    full = write_clip(tmp_path / "full.avi", codec="mpeg4", container="avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    seen = []
    try:
        for frame in iter_frames(cut):
            seen.append(frame.index)
    except VideoError as exc:
        assert "corrupt or truncated" in str(exc)
    assert 0 < len(seen) < N


def test_vtest_recipe_constants():
    from foldedcnn.data import VTEST_ROI, VTEST_SIZE

    assert VTEST_SIZE == (50, 50)
    check_roi(VTEST_ROI, 768, 576)


FORMATS = ["yuv420p", "yuvj420p", "nv12", "nv21", "yuv422p", "yuv444p", "yuv410p", "gray", "rgb24", "yuyv422",
           "bgr0", "rgb0", "0rgb", "bgra", "argb", "gbrp", "ya8", "rgb565le",  # padded, alpha, planar RGB, 5-6 bits
           "yuv420p10le", "yuv420p10be", "p010le", "yuv422p10le", "yuv444p12le", "gray10le", "rgb48le",  # 16-bit words
           "yuva420p10le", "x2rgb10le",  # 10-bit samples sharing 32-bit words: converted whole
           "uyvy422", "yvyu422", "y210le"]  # packed 4:2:2 like yuyv422: 2 pixels share a chroma pair


@pytest.fixture(scope="module")
def frames_by_format():
    """One noisy 98x66 frame (the hardest case for chroma upsampling) in each pixel format."""
    noise = np.random.default_rng(0).integers(0, 256, (66, 98, 3), dtype=np.uint8)
    base = av.VideoFrame.from_ndarray(noise, format="rgb24")
    return {fmt: base.reformat(format=fmt) for fmt in FORMATS}


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMATS), data=st.data())
def test_region_only_conversion_equals_cropping_the_full_frame(frames_by_format, fmt, data):
    """Converting only the region gives exactly the pixels of the full-frame RGB conversion, cropped:
    the job and the training data (build_video_task) both take this path, and nothing changed for them."""
    frame = frames_by_format[fmt]
    x = data.draw(st.integers(0, 97))
    y = data.draw(st.integers(0, 65))
    roi = (x, y, data.draw(st.integers(1, 98 - x)), data.draw(st.integers(1, 66 - y)))
    full = frame.to_ndarray(format="rgb24")
    np.testing.assert_array_equal(region_rgb(frame, roi), full[y : y + roi[3], x : x + roi[2]])


CONVERTED_WHOLE = {"rgb565le", "x2rgb10le"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_formats_whose_samples_cannot_be_cut_are_converted_whole(frames_by_format, fmt):
    """The region's planes are cut out for 8-bit and 16-bit-word formats, packed 4:2:2 too (a 1080p 10-bit HEVC
    frame converted whole cost 7 ms instead of 0.05, a yuyv422 one 4.8); the conversion above is exact either
    way, so this is what shows it."""
    from foldedcnn.data._region import _layout

    assert (_layout(frames_by_format[fmt]) is None) == (fmt in CONVERTED_WHOLE)


@pytest.mark.parametrize("fmt", ["rgb24", "yuv420p"])
def test_regions_of_successive_frames_are_arrays_of_their_own(vtest_frames, fmt):
    """The frame the region is cut into is reused from call to call; what comes out must not be a view of it
    (FFmpeg's scaler returns an RGB frame of the asked size as is), or every region kept would show the last."""
    from foldedcnn.data._region import region_resized

    frames = [f.reformat(format=fmt) for f in vtest_frames[:6]]
    roi = (480, 260, 140, 140)
    kept = [(region_rgb(f, roi), region_resized(f, roi, (140, 140)), region_resized(f, roi, (50, 50))) for f in frames]
    for frame, (exact, same_size, small) in zip(frames, kept, strict=True):
        np.testing.assert_array_equal(exact, frame.to_ndarray(format="rgb24")[260:400, 480:620])
        np.testing.assert_array_equal(same_size, region_resized(frame, roi, (140, 140)))
        np.testing.assert_array_equal(small, region_resized(frame, roi, (50, 50)))
    assert len({exact.tobytes() for exact, _, _ in kept}) == len(frames)


def test_iter_frames_with_a_region_crops_the_same_pixels(clip):
    full = list(iter_frames(clip, stride=5))
    region = list(iter_frames(clip, stride=5, roi=ROI))
    x, y, w, h = ROI
    assert [f.index for f in region] == [f.index for f in full]
    assert all((r.rgb == f.rgb[y : y + h, x : x + w]).all() for r, f in zip(region, full, strict=True))
    with pytest.raises(VideoError, match="outside"):
        next(iter_frames(clip, roi=(150, 100, 40, 40)))


@pytest.fixture(scope="module")
def vtest_frames():
    """Every 20th frame of vtest.avi (natural video: people on a street), decoded as yuv420p."""
    from foldedcnn.data import vtest_path

    try:
        path = vtest_path()
    except DataError:
        pytest.skip("vtest.avi not installed (make system-deps)")
    with av.open(str(path)) as container:
        return [f for i, f in enumerate(container.decode(video=0)) if i % 20 == 0]


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p", "yuv420p10le", "p010le",
                                 "yuyv422"])
def test_region_resized_in_one_pass_is_within_a_level_of_converting_then_resizing(vtest_frames, fmt):
    """The job's and the video data sets' conversion (crop, scale and convert in one FFmpeg pass) against
    converting the region exactly and resizing it with OpenCV: the chroma is averaged before rather than
    after upsampling, and FFmpeg's area filter is not OpenCV's. On natural video the pixels differ by about
    one level of 255 on average (< 1.5) and by at most 8 for 99 % of them."""
    from foldedcnn.data._region import region_resized
    from foldedcnn.data.video import resize_region

    for roi, size in (((480, 260, 140, 140), (50, 50)), ((100, 50, 300, 200), (64, 96)), ((10, 20, 40, 30), (60, 80))):
        frames = [f.reformat(format=fmt) for f in vtest_frames]
        fast = np.stack([region_resized(f, roi, size) for f in frames])
        exact = np.stack([resize_region(region_rgb(f, roi), size).transpose(1, 2, 0) for f in frames])
        assert fast.shape == exact.shape == (len(frames), *size, 3) and fast.dtype == np.uint8
        diff = np.abs(fast.astype(int) - exact)
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8, (roi, fmt, diff.mean(), np.percentile(diff, 99))


def test_region_resized_off_the_chroma_grid_takes_the_exact_path(vtest_frames):
    from foldedcnn.data._region import region_resized
    from foldedcnn.data.video import resize_region

    frame, roi = vtest_frames[3], (481, 260, 139, 140)  # odd x and w: not on the 4:2:0 grid
    expected = resize_region(region_rgb(frame, roi), (50, 50)).transpose(1, 2, 0)
    np.testing.assert_array_equal(region_resized(frame, roi, (50, 50)), expected)


def test_iter_frames_with_a_size_yields_what_models_are_fed(clip):
    from foldedcnn.data._region import region_resized

    resized = list(iter_frames(clip, stride=7, roi=ROI, size=(24, 32)))
    assert all(f.rgb.shape == (24, 32, 3) and f.rgb.dtype == np.uint8 for f in resized)
    with av.open(str(clip)) as container:
        decoded = [f for i, f in enumerate(container.decode(video=0)) if i % 7 == 0]
    for got, frame in zip(resized, decoded, strict=True):
        np.testing.assert_array_equal(got.rgb, region_resized(frame, ROI, (24, 32)))
    whole = next(iter_frames(clip, size=(H // 2, W // 2)))
    assert whole.rgb.shape == (H // 2, W // 2, 3)


def test_the_index_gives_each_frame_the_time_the_decoder_gives_it(tmp_path, clip):
    """VideoIndex.seconds is how a decoder without timestamps (NVDEC's) times its frames: the same times as the
    CPU decoder's, also for an MPEG-TS stream with B-frames, whose first frame is not at 0 s, and for one whose
    timestamps wrap around (33 bits) a second in."""
    ts = tmp_path / "stream.ts"
    with av.open(str(ts), "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.max_b_frames, stream.codec_context.gop_size = 2, 12
        for frame in av.open(str(clip)).decode(video=0):
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    wrapped = wrap_ts_timestamps(Path(shutil.copy(ts, tmp_path / "wrapped.ts")), 1.0)
    for path in (clip, wrapped, ts):
        index, info = index_video(path), probe_video(path)
        both_info, both_index = probe_and_index(path)  # one opening of the file, what the job's planning reads
        assert both_info == info and (both_index.pts == index.pts).all()
        assert (both_index.keyframes == index.keyframes).all() and both_index.time_base == index.time_base
        decoded = np.array([f.time_s for f in iter_frames(path)])
        assert index.seekable and len(decoded) == index.frames
        np.testing.assert_allclose(index.seconds(np.arange(index.frames), info.fps), decoded, rtol=0, atol=1e-9)
    assert decoded[0] > 0.1  # this MPEG-TS stream starts at 0.12 s: frame numbers over the rate would be off


@settings(max_examples=40, deadline=None)
@given(frames=st.integers(0, 500), keyframe_every=st.integers(1, 60), start=st.integers(-2**40, 2**40),
       step=st.integers(1, 3003), time_base=st.sampled_from([0.0, 1 / 90000, 1 / 12800, 1 / 30]))
def test_a_saved_index_loads_back_equal(tmp_path_factory, frames, keyframe_every, start, step, time_base):
    index = VideoIndex(start + step * np.arange(frames, dtype=np.int64),
                       np.arange(0, frames, keyframe_every, dtype=np.int64), time_base)
    path = tmp_path_factory.mktemp("index") / "index.npz"
    index.save(path)
    back = VideoIndex.load(path)
    assert np.array_equal(back.pts, index.pts) and np.array_equal(back.keyframes, index.keyframes)
    assert back.time_base == time_base and back.pts.dtype == back.keyframes.dtype == np.int64
    assert back.seekable == index.seekable


@settings(max_examples=150, deadline=None)
@given(frames=st.integers(1, 400), keyframe_every=st.integers(1, 60), step=st.integers(1, 3003), data=st.data())
def test_a_window_of_an_index_answers_for_its_frames_as_the_whole_index(frames, keyframe_every, step, data):
    """What a decoder of frames [first, end) is sent instead of a long video's whole index: from the keyframe it
    starts at through frame `end` (it locates that frame to know it is done), no more."""
    index = VideoIndex(7 + step * np.arange(frames, dtype=np.int64),
                       np.arange(0, frames, keyframe_every, dtype=np.int64), 1 / 90000)
    first = data.draw(st.integers(0, frames - 1), label="first")
    end = data.draw(st.none() | st.integers(first + 1, frames + 3), label="end")
    window = index.window(first, end)
    reaches = frames if end is None else min(end + 1, frames)  # the frame after the window's last
    held = np.arange(first, reaches)
    assert window.seekable and window.start == index.keyframe_at_or_before(first) == window.keyframes[0]
    assert window.frames == reaches and len(window.pts) == reaches - window.start
    np.testing.assert_array_equal(window.seconds(held, 30.0), index.seconds(held, 30.0))
    assert [window.keyframe_at_or_before(f) for f in held] == [index.keyframe_at_or_before(f) for f in held]
    found, previous = [], None
    for f in held:
        previous = located(window, int(index.pts[f]), previous, Path("v.mp4"))
        found.append(previous)
    assert found == list(held)
    if window.start:  # a frame a seek may land on before the window: not wanted, not an error
        assert located(window, int(index.pts[window.start - 1]), None, Path("v.mp4")) is None
        with pytest.raises(ValueError, match="not saved"):
            window.save(Path("never-written.npz"))
    unseekable = VideoIndex(index.pts, index.keyframes + 1)  # frame 0 is no keyframe: decoding starts before it
    assert unseekable.window(first, end) is unseekable  # counted from frame 0 by its decoders: kept whole


@pytest.mark.parametrize("content", ["pickled", "wrong arrays", "not a zip"])
def test_a_file_that_is_not_a_saved_index_is_refused_unopened(tmp_path, content):
    path = tmp_path / "index.npz"
    if content == "pickled":  # an object array: loading it would unpickle
        np.savez(path, pts=np.array([object()]), keyframes=np.zeros(1, np.int64), time_base=np.float64(0))
    elif content == "wrong arrays":
        np.savez(path, pts=np.zeros((2, 2), np.int64), keyframes=np.zeros(1, np.int64), time_base=np.float64(0))
    else:
        path.write_bytes(b"not an index")
    with pytest.raises(VideoError, match="is not a saved video index"):
        VideoIndex.load(path)

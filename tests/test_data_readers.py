"""IDX, CIFAR and ImageFolder readers on tiny files written here in the real formats."""

import gzip
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from foldedcnn.data import DataError, load_data, read_idx
from foldedcnn.data.cifar import safe_load_batch
from foldedcnn.data.idx import FASHION_MNIST_DIR


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), gz=True)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz=False)  # raw works too
    return tmp_path


def test_idx_round_trip_gz_and_raw(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (True, False):
        write_idx(tmp_path / "a.idx", a, gz)
        np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad.idx").write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    write_idx(tmp_path / "short.idx", a, False)
    (tmp_path / "short.idx").write_bytes((tmp_path / "short.idx").read_bytes()[:-3])
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "short.idx")


def test_fashion_mnist_splits_padding_and_channels(fashion_dir):
    train = load_data(f"fashion-mnist:{fashion_dir}", "train")
    val = load_data(f"fashion-mnist:{fashion_dir}?size=32&channels=3", "val")
    test = load_data(f"fashion-mnist:{fashion_dir}", "test")
    assert train.images.shape == (10, 3, 28, 28) and val.images.shape == (2, 3, 32, 32)
    assert test.images.shape == (5, 3, 28, 28) and test.labels.tolist() == [0, 1, 2, 3, 4]
    assert val.labels.tolist() == [0, 1] and train.class_names[9] == "Ankle boot"
    assert bool((val.images[:, :, :2].eq(0)).all()) and torch_equal_channels(val.images)
    with pytest.raises(DataError, match="channels must be 3"):
        load_data(f"fashion-mnist:{fashion_dir}?channels=1", "train")


def torch_equal_channels(images) -> bool:
    return bool((images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all())


@pytest.mark.skipif(not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="Debian dataset-fashion-mnist not installed (make system-deps)")
def test_real_fashion_mnist_test_split():
    test = load_data("fashion-mnist?size=32", "test")
    assert test.images.shape == (10_000, 3, 32, 32) and test.class_counts() == [1000] * 10


def write_cifar(root, classes: int, n_train: int = 20, n_test: int = 6):
    """The python archive: protocol-2 pickles of dicts with bytes keys, numpy uint8 data (N, 3072)."""
    rng = np.random.default_rng(1)

    def dump(name, obj):
        (root / name).write_bytes(pickle.dumps(obj, protocol=2))

    root.mkdir()
    if classes == 10:
        per = n_train // 5
        for i in range(1, 6):
            dump(f"data_batch_{i}", {b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
                                     b"labels": [int(v) for v in rng.integers(0, 10, per)], b"batch_label": b"x"})
        dump("test_batch", {b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
                            b"labels": list(range(n_test))})
        dump("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072})
    else:
        for name, n in (("train", n_train), ("test", n_test)):
            dump(name, {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                        b"fine_labels": [i % 100 for i in range(n)], b"coarse_labels": [0] * n})
        dump("meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)]})
    return root


def test_cifar10_and_cifar100(tmp_path):
    c10 = write_cifar(tmp_path / "cifar-10-batches-py", 10)
    train, val, test = (load_data(f"cifar10:{c10}", s) for s in ("train", "val", "test"))
    assert train.images.shape == (18, 3, 32, 32) and val.images.shape == (2, 3, 32, 32)
    assert test.labels.tolist() == list(range(6)) and test.class_names[3] == "c3"
    raw = safe_load_batch((c10 / "test_batch").read_bytes())["data"]
    assert np.array_equal(test.images.numpy().reshape(6, -1), raw)  # channel-major rows, as CIFAR stores them
    c100 = write_cifar(tmp_path / "cifar-100-python", 100)
    assert load_data(f"cifar100:{c100}", "test").class_names[99] == "f99"


def test_cifar_refuses_code_in_a_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    root = write_cifar(tmp_path / "cifar-10-batches-py", 10)
    (root / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_data(f"cifar10:{root}", "test")
    (root / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        load_data(f"cifar10:{root}", "test")
    with pytest.raises(DataError, match="CIFAR archive not found"):
        load_data(f"cifar10:{tmp_path / 'nope'}", "test")


def test_image_folder(tmp_path):
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                suffix = "jpg" if i % 2 else "png"
                Image.new("RGB", (12, 10), colour).save(tmp_path / split / cls / f"{i}.{suffix}")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # Jupyter's: not a class
    (tmp_path / "train" / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07")  # macOS's AppleDouble companion
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "cat" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (12, 10), (0, 255, 0)).save(tmp_path / "train" / "cat" / ".ipynb_checkpoints" / "0.png")
    for sub, suffix in (("day1", "webp"), ("day2/cam3", "bmp")):  # nested as torchvision's ImageFolder reads them
        (tmp_path / "train" / "dog" / sub).mkdir(parents=True)
        Image.new("RGB", (12, 10), (0, 0, 255)).save(tmp_path / "train" / "dog" / sub / f"x.{suffix}")
    train = load_data(f"folder:{tmp_path}", "train")
    assert train.images.shape == (8, 3, 10, 12) and train.class_names == ["cat", "dog"]
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert int(train.images[0, 0].float().mean()) == 255 and int(train.images[-1, 2].float().mean()) > 240
    with pytest.raises(DataError, match=r"has no train split \(.*missing/train is missing; expected"):
        load_data(f"folder:{tmp_path / 'missing'}", "train")


def test_folder_splits_agree_on_labels_when_one_lacks_a_class(tmp_path):
    """ImageFolder numbers the classes of each folder alone: a val split without "ant" would label "bee" 0, the
    label "ant" has in train. The classes of all the splits together index every split."""
    for split, classes in (("train", ("ant", "bee", "cow")), ("val", ("bee", "cow")), ("test", ("cow", "dog"))):
        for k, cls in enumerate(classes):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(tmp_path / split / cls / "0.png")
    names = ["ant", "bee", "cow", "dog"]
    for split, labels in (("train", [0, 1, 2]), ("val", [1, 2]), ("test", [2, 3])):
        data = load_data(f"folder:{tmp_path}", split)
        assert data.class_names == names and data.labels.tolist() == labels
    (tmp_path / "test").rename(tmp_path / "holdout")
    with pytest.raises(DataError, match=r"has no test split .* it has train, val"):
        load_data(f"folder:{tmp_path}", "test")


def test_data_labelled_otherwise_than_the_checkpoint_is_refused():
    from foldedcnn.data import check_class_names

    check_class_names(["cat", "dog"], ["cat", "dog"], "folder:x")
    check_class_names(["0", "1"], ["cat", "dog"], "npz:x")  # placeholders: nothing recorded to compare
    for data in (["dog", "cat"], ["cat", "cow"]):
        with pytest.raises(DataError, match=r"folder:x labels its classes \[.*\], the checkpoint's are \[cat, dog\]"):
            check_class_names(data, ["cat", "dog"], "folder:x")


def test_eval_refuses_data_whose_classes_are_not_the_checkpoints(tmp_path, capsys):
    import torch

    from foldedcnn.checkpoint import save_checkpoint
    from foldedcnn.cli import main
    from foldedcnn.folded import FoldedModel

    for cls in ("cat", "dog"):
        (tmp_path / "pets" / "test" / cls).mkdir(parents=True)
        Image.new("RGB", (50, 50), (200, 0, 0)).save(tmp_path / "pets" / "test" / cls / "0.png")
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", FoldedModel.from_zoo("noscope-coral", 1).eval(),
                           class_names=["absent", "present"])
    assert main(["eval", str(ckpt), "--data", f"folder:{tmp_path / 'pets'}"]) == 2
    assert "labels its classes [cat, dog], the checkpoint's are [absent, present]" in capsys.readouterr().err


def test_a_folder_takes_the_class_order_it_is_given(tmp_path):
    """Sorted, "car" would be class 0 and "empty" the positive class of a two-class cascade; ?classes= says which is
    which (and puts "2" before "10")."""
    for split in ("train", "val"):
        for k, cls in enumerate(("car", "empty")):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8), (100 * k, 0, 0)).save(tmp_path / split / cls / "0.png")
    assert load_data(f"folder:{tmp_path}", "train").class_names == ["car", "empty"]
    data = load_data(f"folder:{tmp_path}?classes=empty,car", "val")
    assert data.class_names == ["empty", "car"] and data.labels.tolist() == [0, 1]
    assert int(data.images[0, 0].float().mean()) == 100  # the "empty" image is class 0
    for spec, needle in ((f"folder:{tmp_path}?classes=empty", "must name exactly the class folders"),
                         (f"folder:{tmp_path}?classes=empty,car,bus", "must name exactly the class folders"),
                         (f"folder:{tmp_path}?classes=car,car", "must name each class once"),
                         (f"folder:{tmp_path}?depth=3",
                          r"unknown option 'depth' for folder \(options: classes, height, size, width\)")):
        with pytest.raises(DataError, match=needle):
            load_data(spec, "train")


def test_a_folder_of_crops_of_many_sizes_is_resized_on_request(tmp_path):
    """Crops cut by a detector come in many sizes: ?size=N or ?height=H&width=W resizes each (area averaging when
    shrinking, as the video job's regions are)."""
    for k, (w, h) in enumerate(((30, 20), (64, 48), (9, 7))):
        (tmp_path / "train" / "hud").mkdir(parents=True, exist_ok=True)
        image = np.zeros((h, w, 3), np.uint8)
        image[:, : w // 2] = 200  # left half bright: still so after any resize
        Image.fromarray(image).save(tmp_path / "train" / "hud" / f"{k}.png")
    with pytest.raises(DataError, match=r"different sizes \(H x W: 7x9, 20x30, 48x64, \.\.\.\); add \?size=N"):
        load_data(f"folder:{tmp_path}", "train")
    data = load_data(f"folder:{tmp_path}?height=17&width=40", "train")
    assert data.images.shape == (3, 3, 17, 40)
    assert (data.images[:, :, :, :15] > 150).all() and (data.images[:, :, :, 25:] < 50).all()
    assert load_data(f"folder:{tmp_path}?size=16", "train").images.shape == (3, 3, 16, 16)
    for spec, needle in ((f"folder:{tmp_path}?width=40", "go together"),
                         (f"folder:{tmp_path}?size=16&width=40", "not both"),
                         (f"folder:{tmp_path}?size=0", "must be >= 1 pixel")):
        with pytest.raises(DataError, match=needle):
            load_data(spec, "train")

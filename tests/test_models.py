"""deapnn.models: every model builds by name and maps its valid inputs to (N, num_classes)."""
import pytest
import torch

from deapnn.models import build_model, check_model_input, model_names


SMALL_CASES = [
    ("mlp", (4,), 3),            # iris
    ("mlp", (1, 8, 8), 10),      # digits, flattened
    ("mlp", (10,), 1),           # diabetes regression: one output
    ("cnn", (1, 8, 8), 10),      # digits
    ("cnn", (1, 28, 28), 10),    # MNIST / Fashion-MNIST
    ("cnn", (1, 40), 10),        # MNIST-1D, 1-D variant
    ("cnn", (3, 32, 32), 10),    # CIFAR
]


def test_model_names_cover_the_issue():
    assert set(model_names()) >= {"mlp", "cnn", "vgg19_bn", "resnet18", "mobilenetv2", "resnet50",
                                  "densenet121", "senet18", "efficientnetb0", "mobilenetv2_paper"}


@pytest.mark.parametrize("name,shape,classes", SMALL_CASES)
def test_small_models_output_shape(name, shape, classes):
    torch.manual_seed(0)
    model = build_model(name, shape, classes)
    out = model(torch.randn(3, *shape))          # train mode: BatchNorm needs >1 example
    assert out.shape == (3, classes)
    assert torch.isfinite(out).all()
    out.sum().backward()                          # trainable end to end
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_cnn_picks_1d_or_2d_by_shape():
    def convs(shape, kind):
        return [m for m in build_model("cnn", shape, 10).modules() if isinstance(m, kind)]

    assert convs((1, 40), torch.nn.Conv1d) and not convs((1, 40), torch.nn.Conv2d)
    assert convs((1, 8, 8), torch.nn.Conv2d) and not convs((1, 8, 8), torch.nn.Conv1d)


@pytest.mark.parametrize("name", ["vgg19_bn", "resnet18", "mobilenetv2", "mobilenetv2_paper"])
def test_cifar_models_output_shape(name):
    torch.manual_seed(0)
    model = build_model(name, (3, 32, 32), 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_cifar_model_single_channel_input():
    # resnet18 accepts grey 28x28 images (MNIST) too: the stem follows input_shape[0].
    model = build_model("resnet18", (1, 28, 28), 10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("transformer9000", (4,), 3)
    msg = str(err.value)
    assert "transformer9000" in msg
    for name in model_names():
        assert name in msg


@pytest.mark.parametrize("name,shape", [
    ("cnn", (4,)),                  # tabular input to a conv-net
    ("cnn", (1, 2, 3, 4)),
    ("vgg19_bn", (1, 40)),
    ("resnet18", (30,)),
    ("mobilenetv2", (3, 32)),
    ("mobilenetv2_paper", (3, 32)),
    ("vgg19_bn", (1, 28, 28)),      # VGG's five poolings need >= 32x32
    ("mlp", ()),
    ("mlp", (0,)),
])
def test_wrong_input_shape_is_value_error(name, shape):
    with pytest.raises(ValueError, match=name):
        build_model(name, shape, 10)
    with pytest.raises(ValueError):
        check_model_input(name, shape)


def test_num_classes_must_be_positive():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", (4,), 0)


def test_same_seed_same_initial_weights():
    torch.manual_seed(5)
    a = build_model("cnn", (1, 8, 8), 10).state_dict()
    torch.manual_seed(5)
    b = build_model("cnn", (1, 8, 8), 10).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# Parameter counts of the reference code's CIFAR models (ld-ing/gradient-lexicase, models/:
# ResNet50, DenseNet121, SENet18, EfficientNetB0, MobileNetV2 built with num_classes=10 and 100),
# computed once by running those files with this project's torch; our own implementations must
# match.
REFERENCE_PARAMETERS = {
    "mobilenetv2": {10: 2_296_922, 100: 2_412_212},
    "resnet50": {10: 23_520_842, 100: 23_705_252},
    "densenet121": {10: 6_956_298, 100: 7_048_548},
    "senet18": {10: 11_260_354, 100: 11_306_524},
    # the reference's first EfficientNet block (expansion 1) also builds a 1×1 expansion conv
    # (32·32 weights) and its BatchNorm (2·32) that its forward pass never uses: 1,088
    # parameters that never get a gradient, left out here
    "efficientnetb0": {10: 3_599_686 - 1_088, 100: 3_628_576 - 1_088},
}


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMETERS))
def test_reference_cifar_architectures_match_reference_counts_and_train(name):
    for classes, expected in REFERENCE_PARAMETERS[name].items():
        model = build_model(name, (3, 32, 32), classes)
        assert sum(p.numel() for p in model.parameters()) == expected
    torch.manual_seed(0)
    model = build_model(name, (3, 32, 32), 10)       # train mode, batch 2 (BatchNorm needs 2)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMETERS))
def test_reference_cifar_architectures_take_grey_28x28_images(name):
    model = build_model(name, (1, 28, 28), 10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_densenet121_needs_8x8_images():
    with pytest.raises(ValueError, match="densenet121"):
        build_model("densenet121", (3, 7, 7), 10)
    build_model("densenet121", (1, 8, 8), 10)


# The reference code's MobileNetV2 (models/mobilenetv2.py), block by block: (in, expanded, out
# channels, stride, 1×1 conv + BN shortcut). Every block keeps its expansion conv (block 0 has
# t = 1: 32 → 32); stride-1 blocks that change channels get a conv shortcut. Read off that file
# and checked against it by loading its state_dict and comparing outputs.
REFERENCE_MBV2_BLOCKS = [
    (32, 32, 16, 1, True), (16, 96, 24, 1, True), (24, 144, 24, 1, False),
    (24, 144, 32, 2, False), (32, 192, 32, 1, False), (32, 192, 32, 1, False),
    (32, 192, 64, 2, False), (64, 384, 64, 1, False), (64, 384, 64, 1, False),
    (64, 384, 64, 1, False), (64, 384, 96, 1, True), (96, 576, 96, 1, False),
    (96, 576, 96, 1, False), (96, 576, 160, 2, False), (160, 960, 160, 1, False),
    (160, 960, 160, 1, False), (160, 960, 320, 1, True)]


def test_mobilenetv2_is_the_reference_network_layer_for_layer():
    model = build_model("mobilenetv2", (3, 32, 32), 10)
    sd = model.state_dict()
    assert sd["conv1.weight"].shape == (32, 3, 3, 3) and sd["bn1.weight"].shape == (32,)
    assert len(model.layers) == len(REFERENCE_MBV2_BLOCKS)
    for i, (cin, hidden, cout, stride, conv_shortcut) in enumerate(REFERENCE_MBV2_BLOCKS):
        block = model.layers[i]
        assert sd[f"layers.{i}.conv1.weight"].shape == (hidden, cin, 1, 1)
        assert sd[f"layers.{i}.conv2.weight"].shape == (hidden, 1, 3, 3)
        assert block.conv2.stride == (stride, stride) and block.conv2.groups == hidden
        assert sd[f"layers.{i}.conv3.weight"].shape == (cout, hidden, 1, 1)
        shortcut = [k for k in sd if k.startswith(f"layers.{i}.shortcut.")]
        if conv_shortcut:
            assert sd[f"layers.{i}.shortcut.0.weight"].shape == (cout, cin, 1, 1)
            assert sd[f"layers.{i}.shortcut.1.weight"].shape == (cout,)
        else:
            assert shortcut == []
    assert sd["conv2.weight"].shape == (1280, 320, 1, 1) and sd["linear.weight"].shape == (10, 1280)
    assert len(sd) == 344                 # the reference's state_dict: same keys, so it loads
    # stride-1 blocks add their shortcut (identity when the channels are kept), stride 2 none
    def main_path(b, x):
        return b.bn3(b.conv3(torch.relu(b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x))))))))

    model.eval()
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model.layers[2](x) - x, main_path(model.layers[2], x), atol=1e-6)
        assert torch.equal(model.layers[3](x), main_path(model.layers[3], x))


def test_mobilenetv2_paper_follows_sandler_et_al():
    model = build_model("mobilenetv2_paper", (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 2_236_682
    assert build_model("mobilenetv2_paper", (3, 32, 32), 100).head.out_features == 100
    blocks = [m for m in model.modules() if hasattr(m, "use_residual")]
    assert len(blocks) == len(REFERENCE_MBV2_BLOCKS)
    first = [m for m in blocks[0].block if isinstance(m, torch.nn.Conv2d)]
    # t = 1: no expansion conv, the block starts with the depthwise conv on the stem's 32 channels
    assert [(c.in_channels, c.out_channels, c.groups) for c in first] == [(32, 32, 32), (32, 16, 1)]
    for block, (cin, hidden, cout, stride, _) in zip(blocks[1:], REFERENCE_MBV2_BLOCKS[1:]):
        convs = [m for m in block.block if isinstance(m, torch.nn.Conv2d)]
        assert [(c.in_channels, c.out_channels) for c in convs] == [
            (cin, hidden), (hidden, hidden), (hidden, cout)]
        assert convs[1].groups == hidden and convs[1].stride == (stride, stride)
    # residual only when the stride is 1 and the channels are kept; never a conv shortcut
    assert [b.use_residual for b in blocks] == [s == 1 and ci == co
                                                for ci, _, co, s, _ in REFERENCE_MBV2_BLOCKS]
    assert not any(hasattr(b, "shortcut") for b in blocks)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 2 + 3 * 17 - 1


@pytest.mark.parametrize("name,clip", [("mobilenetv2", False), ("mobilenetv2_paper", True)])
def test_mobilenetv2_activations_reference_relu_paper_relu6(name, clip):
    # Every BatchNorm shifted by +100: an activation's output is ~100 under ReLU and 6 under
    # ReLU6; the depthwise convs and the classifier read activation outputs.
    model = build_model(name, (3, 32, 32), 10).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.constant_(m.bias, 100.0)
    maxima = []
    readers = [m for m in model.modules()
               if isinstance(m, torch.nn.Linear) or getattr(m, "groups", 1) > 1]
    for m in readers:
        m.register_forward_pre_hook(lambda _m, args: maxima.append(float(args[0].max())))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert len(maxima) == 18
    assert (max(maxima) <= 6.0) if clip else (min(maxima) > 6.0)

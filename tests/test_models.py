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
                                  "densenet121", "senet18", "efficientnetb0"}


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


@pytest.mark.parametrize("name", ["vgg19_bn", "resnet18", "mobilenetv2"])
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
# ResNet50, DenseNet121, SENet18, EfficientNetB0 built with num_classes=10 and 100), computed
# once by running those files with this project's torch; our own implementations must match.
REFERENCE_PARAMETERS = {
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

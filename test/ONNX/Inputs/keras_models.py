"""Keras models converted to ONNX by tf2onnx (opset 17, a dynamic batch),
with inputs and Keras's outputs for them, for nnc import's round trip.

    keras_models.py KIND OUT    (KIND: mlp | cnn | lstm)

Writes OUT/model.onnx, OUT/inputs.npz (input x) and OUT/keras.npz (output
"logits"), and prints a line naming them. Runs in the TensorFlow
environment (tools/pyenv.sh tf).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402


def main(kind, out):
    os.makedirs(out, exist_ok=True)
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    layers = tf.keras.layers
    if kind == "mlp":
        inp = tf.keras.Input((64,), name="x")
        h = layers.Dense(32, activation="relu", bias_initializer="random_normal")(inp)
        y = layers.Dense(10, activation="softmax", name="logits")(h)
        x = rng.uniform(0, 4, (6, 64)).astype(np.float32)
    elif kind == "cnn":  # channels last, as Keras: tf2onnx writes the transposes
        inp = tf.keras.Input((16, 16, 3), name="x")
        h = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer="random_normal")(inp)
        h = layers.MaxPooling2D(2)(h)
        h = layers.Flatten()(h)
        y = layers.Dense(10, name="logits")(h)
        x = rng.uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    elif kind == "lstm":
        inp = tf.keras.Input((7, 12), name="x")
        h = layers.LSTM(20, bias_initializer="random_normal")(inp)
        y = layers.Dense(5, name="logits")(h)
        x = rng.normal(size=(6, 7, 12)).astype(np.float32)
    else:
        raise SystemExit(f"unknown kind {kind}")
    model = tf.keras.Model(inp, y)
    ref = model(x).numpy()
    spec = (tf.TensorSpec((None,) + x.shape[1:], tf.float32, name="x"),)
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17,
                                               output_path=os.path.join(out, "model.onnx"))
    name = onnx_model.graph.output[0].name
    np.savez(os.path.join(out, "inputs.npz"), x=x)
    np.savez(os.path.join(out, "keras.npz"), **{name: ref})
    print(f"converted {kind}: x {list(x.shape)} -> {name} {list(ref.shape)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

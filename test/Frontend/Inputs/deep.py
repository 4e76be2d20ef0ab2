# Writes a model whose expressions are nested or chained KIND, N deep, to stdout
# (issue 15: deep input must give a located error or work, never a crash).
import sys

kind, n = sys.argv[1], int(sys.argv[2])
x = "x"
if kind == "parens":
    e = "(" * n + x + ")" * n
elif kind == "neg":
    e = "-" * n + x
elif kind == "call":
    e = "relu(" * n + x + ")" * n
elif kind == "plus":
    e = " + ".join([x] * n)
elif kind == "mul":
    e = " * ".join([x] * n)
elif kind == "pipe":
    e = x + " |> relu" * n
else:
    sys.exit("unknown kind " + kind)
body = f"""model Deep {{
  input x : f32[N, 4]
  label y : i64[N]
  h = {e}
  logits = dense(h, 3)
  loss = cross_entropy(logits, y)
}}
"""
sys.stdout.write(body)
if len(sys.argv) > 3 and sys.argv[3] == "train":
    steps = " |> shuffle" * (int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    sys.stdout.write(f"""train Deep {{
  data = csv("d.csv"){steps}
  optimizer = sgd(lr = 0.1)
  epochs = 1
}}
""")

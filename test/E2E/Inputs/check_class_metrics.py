"""Consistency checks of nnc's class metrics and predictions.

  check_class_metrics.py METRICS.json
      the confusion matrix, precision, recall and top-k agree with each other
      and with the compiled evaluate step's val_accuracy
  check_class_metrics.py --predictions PRED.csv
      probabilities are in [0, 1] and the label column's accuracy is sane
  check_class_metrics.py --pooled EVAL.json PRED.csv
      accuracy over all rows = row-weighted mean of train and val accuracies
"""
import csv
import json
import sys


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def metrics(path):
    m = json.load(open(path))
    cm = m["val_confusion"]
    n = sum(map(sum, cm))
    diag = sum(cm[i][i] for i in range(len(cm)))
    if abs(diag / n - m["val_accuracy"]) > 1e-9:
        fail(f"diagonal {diag}/{n} vs val_accuracy {m['val_accuracy']}")
    for j in range(len(cm)):
        col = sum(cm[t][j] for t in range(len(cm)))
        row = sum(cm[j])
        p = cm[j][j] / col if col else None
        r = cm[j][j] / row if row else None
        if (p is None) != (m["val_precision"][j] is None) or (p is not None and abs(p - m["val_precision"][j]) > 1e-12):
            fail(f"precision of class {j}")
        if (r is None) != (m["val_recall"][j] is None) or (r is not None and abs(r - m["val_recall"][j]) > 1e-12):
            fail(f"recall of class {j}")
    if not m["val_top3_accuracy"] >= m["val_accuracy"]:
        fail("top-3 below accuracy")
    print(f"confusion: {n} examples, diagonal = val_accuracy, precision and recall = the matrix's, top-3 >= accuracy")


def predictions(path):
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        if not 0 <= float(r["probability"]) <= 1:
            fail(f"probability {r['probability']} in row {r['row']}")
    acc = sum(r["class"] == r["label"] for r in rows) / len(rows)
    if not 0.8 < acc <= 1:
        fail(f"accuracy {acc}")
    print(f"{len(rows)} predictions: probabilities in [0, 1], accuracy matches the labels")


def pooled(eval_json, path):
    m = json.load(open(eval_json))
    rows = list(csv.DictReader(open(path)))
    hits = sum(r["class"] == r["label"] for r in rows)
    n_val = round(len(rows) * 0.2)
    n_train = len(rows) - n_val
    want = m["train_accuracy"] * n_train + m["val_accuracy"] * n_val
    if abs(hits - want) > 1e-6:
        fail(f"{hits} correct predictions, eval says {want}")
    print(f"pooled accuracy matches ({n_train} train + {n_val} val rows)")


if __name__ == "__main__":
    if sys.argv[1] == "--predictions":
        predictions(sys.argv[2])
    elif sys.argv[1] == "--pooled":
        pooled(sys.argv[2], sys.argv[3])
    else:
        metrics(sys.argv[1])

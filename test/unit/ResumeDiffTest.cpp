// nnc train --resume's explanation of a refused checkpoint: one line per
// setting that differs between the stored resume key and this run's.
#include "tools/Driver.h"

#include <gtest/gtest.h>

using nnc::driver::resumeDiff;

namespace {
const char *kStored =
    "model Digits, adamw lr 0.001 momentum 0 decay 0.01 betas 0.9 0.999 eps 1e-08 alpha 0.99 clip 0 0, "
    "schedule none 0.1 0 0 0 0.3 0.1 0.0001, batch 64, seed 5, 1438 training and 359 validation "
    "examples, standardize";
}

TEST(ResumeDiff, NamesEachChangedValue) {
  std::string now = "model Digits, adamw lr 0.01 momentum 0 decay 0.01 betas 0.9 0.99 eps 1e-08 alpha 0.99 clip 0 0, "
                    "schedule none 0.1 0 0 0 0.3 0.1 0.0001, batch 32, seed 5, 500 training and 359 validation "
                    "examples, standardize";
  EXPECT_EQ(resumeDiff(kStored, now), "\n  lr: 0.001 in the checkpoint, 0.01 in this run"
                                      "\n  betas: 0.999 in the checkpoint, 0.99 in this run"
                                      "\n  batch: 64 in the checkpoint, 32 in this run"
                                      "\n  training: 1438 in the checkpoint, 500 in this run");
}

TEST(ResumeDiff, SettingsOnOneSideOnly) {
  std::string now = "model Digits, sgd lr 0.001 momentum 0 decay 0.01 betas 0.9 0.999 eps 1e-08 alpha 0.99 clip 0 0, "
                    "schedule none 0.1 0 0 0 0.3 0.1 0.0001, early_stop val_loss 5 0, batch 64, seed 5, 1438 training "
                    "and 359 validation examples";
  std::string d = resumeDiff(kStored, now);
  EXPECT_NE(d.find("\n  only in the checkpoint: adamw lr 0.001"), std::string::npos) << d;
  EXPECT_NE(d.find("\n  only in the checkpoint: standardize"), std::string::npos) << d;
  EXPECT_NE(d.find("\n  only in this run: sgd lr 0.001"), std::string::npos) << d;
  EXPECT_NE(d.find("\n  only in this run: early_stop val_loss 5 0"), std::string::npos) << d;
  EXPECT_EQ(d.find("batch"), std::string::npos) << d;
  EXPECT_EQ(resumeDiff(kStored, kStored), "");
}

TEST(ResumeDiff, ValidationCountIsNamed) {
  std::string now = "model Digits, batch 64, 1438 training and 100 validation examples";
  std::string stored = "model Digits, batch 64, 1438 training and 359 validation examples";
  EXPECT_EQ(resumeDiff(stored, now), "\n  validation: 359 in the checkpoint, 100 in this run");
}

// test_presets.cpp — configs/presets.tsv (the parameter counts --help and `info --presets` show) agrees
// with the models built from every preset; fix with scripts/setup/update-presets.sh.
#include <gtest/gtest.h>

#include "model/config.h"
#include "model/factory.h"
#include "model/model.h"

TEST(Presets, RecordedParameterCountsMatchTheModels) {
  const auto presets = bytelm::list_presets();
  ASSERT_GE(presets.size(), 15u);
  for (const auto& p : presets) {
    auto model = bytelm::make_model(bytelm::load_config(p.path, ""));
    EXPECT_EQ(p.params, model->counted_params())
        << p.name << ": configs/presets.tsv is out of date; run scripts/setup/update-presets.sh";
  }
}

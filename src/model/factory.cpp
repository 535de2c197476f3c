// factory.cpp — see factory.h.
#include "model/factory.h"

#include "model/blt.h"
#include "model/bpe.h"
#include "model/entropy_model.h"
#include "model/hnet.h"
#include "model/megabyte.h"
#include "model/transformer.h"
#include "util/error.h"

namespace bytelm {

LanguageModel make_model(const ModelConfig& cfg) {
  cfg.validate();
  if (cfg.model == "transformer") return std::make_shared<TransformerImpl>(cfg);
  if (cfg.model == "megabyte") return std::make_shared<MegabyteImpl>(cfg);
  if (cfg.model == "entropy") return std::make_shared<EntropyModelImpl>(cfg);
  if (cfg.model == "blt") return std::make_shared<BltImpl>(cfg);
  if (cfg.model == "bpe") return std::make_shared<BpeModelImpl>(cfg);
  if (cfg.model == "hnet") return std::make_shared<HnetImpl>(cfg);
  throw Error("unknown model '" + cfg.model + "'");
}

}  // namespace bytelm

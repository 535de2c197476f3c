// patching.h — transitional: includes the headers that replaced it (blt/entropy_threshold.h,
// model/entropy_model.h).
#pragma once
#include "blt/entropy_threshold.h"
#include "model/entropy_model.h"

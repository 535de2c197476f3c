# embed_page.cmake -DIN=page.html -DOUT=serve_page.h: the page as a C++ string (raw literal), so the server
# binary carries it and needs no files at run time.
file(READ "${IN}" page)
string(FIND "${page}" ")BYTELM_PAGE\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE "${OUT}.tmp" "// Generated from src/serve/page.html by cmake/embed_page.cmake; do not edit.\n#pragma once\ninline const char kServePage[] = R\"BYTELM_PAGE(${page})BYTELM_PAGE\";\n")
file(RENAME "${OUT}.tmp" "${OUT}")

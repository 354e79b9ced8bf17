// (being written)
#include "isolated.hpp"

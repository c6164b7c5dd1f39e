#include "core/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace speedlm {

namespace {
LogLevel initial_level() {
  const char* env = std::getenv("SPEEDLM_LOG");
  if (!env) return LogLevel::Info;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  if (!std::strcmp(env, "warn")) return LogLevel::Warn;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  return LogLevel::Info;
}
LogLevel g_level = initial_level();
}  // namespace

LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }

void log_write(LogLevel level, const std::string& message) {
  static const char* kTag[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "%s: %s\n", kTag[static_cast<int>(level)], message.c_str());
}

}  // namespace speedlm

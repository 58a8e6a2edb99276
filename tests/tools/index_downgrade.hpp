// Test support: rewrites a tagwho index of schema 5 in the layout of schema 4 (every text of an evidence
// blob whole), of schema 3 (also findings keyed by tag), or of schema 2 (also one `evidence` row per item,
// as tagwho stored evidence before schema 3), so that the upgrades can be tested on what they really read.
// Used by the unit tests and, through index_downgrade.cpp, by the CLI tests. Not part of tagwho.
#pragma once
#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "index/sqlite.hpp"
#include "index/store.hpp"

namespace tagwho::test {

// Runs rewrite on the index at path, which must be of schema `version`, in one transaction.
template <typename Rewrite>
void rewrite_index(const std::string& path, int version, Rewrite rewrite) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    throw std::runtime_error(path + ": cannot open");
  }
  try {
    if (sql::scalar(db, "PRAGMA user_version") != version)
      throw std::runtime_error(path + ": not schema " + std::to_string(version));
    sql::exec(db, "BEGIN IMMEDIATE");
    rewrite(db);
    sql::exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db);
    throw;
  }
  sqlite3_close_v2(db);
}

// Schema 5 -> 4: every evidence blob written with its texts whole.
inline void downgrade_index_to_schema4(const std::string& path) {
  rewrite_index(path, 5, [](sqlite3* db) {
    index_detail::rewrite_evidence(db, false);
    sql::exec(db, "PRAGMA user_version = 4;");
  });
}

// Schema 5 -> 3: findings keyed by (tag, content), with an index on content.
inline void downgrade_index_to_schema3(const std::string& path) {
  downgrade_index_to_schema4(path);
  rewrite_index(path, 4, [](sqlite3* db) {
    sql::exec(db, "DROP INDEX findings_tag; ALTER TABLE findings RENAME TO findings_v4;"
                  "CREATE TABLE findings(tag INTEGER NOT NULL, content INTEGER NOT NULL REFERENCES contents(id),"
                  " tag_text TEXT NOT NULL, confidence TEXT NOT NULL, evidence_count INTEGER NOT NULL,"
                  " evidence BLOB NOT NULL, PRIMARY KEY(tag, content)) WITHOUT ROWID;"
                  "CREATE INDEX findings_content ON findings(content);"
                  "INSERT INTO findings SELECT * FROM findings_v4; DROP TABLE findings_v4;"
                  "PRAGMA user_version = 3;");
  });
}

// Schema 5 -> 2.
inline void downgrade_index_to_schema2(const std::string& path) {
  downgrade_index_to_schema3(path);
  rewrite_index(path, 3, [](sqlite3* db) {
    sql::exec(db,
        "CREATE TABLE evidence(tag INTEGER NOT NULL, content INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,"
        " api TEXT, rva INTEGER NOT NULL, file_offset INTEGER, section TEXT NOT NULL, form TEXT,"
        " negative_displacement INTEGER NOT NULL, tag_rva INTEGER, pool_type INTEGER,"
        " pool_flags INTEGER NOT NULL, size INTEGER, protected INTEGER NOT NULL, detail TEXT NOT NULL,"
        " chain TEXT NOT NULL, PRIMARY KEY(tag, content, seq)) WITHOUT ROWID;"
        "CREATE INDEX evidence_content ON evidence(content);");
    {
      sql::Statement findings(db, "SELECT tag, content, evidence FROM findings");
      sql::Statement row(db,
          "INSERT INTO evidence(tag, content, seq, kind, api, rva, file_offset, section, form, negative_displacement,"
          " tag_rva, pool_type, pool_flags, size, protected, detail, chain) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      while (findings.step()) {
        const Tag tag{static_cast<uint32_t>(findings.i64(0))};
        const std::vector<Evidence> items = index_detail::decode_evidence(findings.blob(2), tag);
        for (size_t seq = 0; seq < items.size(); ++seq) {
          const Evidence& e = items[seq];
          std::string chain;
          for (size_t i = 0; i < e.chain.size(); ++i) chain += (i ? " -> " : "") + e.chain[i];
          row.bind(1, tag.value).bind(2, findings.i64(1)).bind(3, seq).bind(4, confidence_name(e.kind));
          if (e.api.empty()) row.bind_null(5); else row.bind(5, e.api);
          row.bind(6, e.rva).bind(7, e.file_offset).bind(8, e.section);
          if (e.form == CallForm::none) row.bind_null(9); else row.bind(9, call_form_name(e.form));
          row.bind(10, e.negative_displacement);
          if (e.kind == Confidence::call || e.kind == Confidence::wrapper) row.bind(11, e.tag_rva); else row.bind_null(11);
          row.bind(12, e.pool_type).bind(13, e.pool_flags).bind(14, e.size).bind(15, e.protected_pool)
              .bind(16, e.detail).bind(17, chain).run();
        }
      }
    }
    sql::exec(db, "ALTER TABLE findings DROP COLUMN evidence; PRAGMA user_version = 2;");
  });
}

}  // namespace tagwho::test

// Which of a user's statements a newer one made stale: a fact that changed
// keeps only its newest value as current. Two sets of rules, both plain text
// (hand-written, see user_statements.h): the wording of a change ("moved from
// Lyon to Porto", "no longer", "my old Mazda", "instead of"), which
// extract_statements applies, and the kinds a generator gave the things
// statements name (a new car replaces the old car), which the data builder
// applies when it has them.
#pragma once

#include "trainer/user_statements.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// The change rules on `statements` (oldest conversation first): flags
// `changes_something` on the statements with a change cue; content a change
// points at ("moved from Lyon", "after years in Lyon", "my old Mazda", a
// modifier a newer statement replaced: "carnivore diet" → "low-sodium diet")
// is stale when an earlier statement named it and no later plain one does;
// the changes that made it stale get `replaces_something`, and every other
// statement naming it is superseded unless its wording holds the stale part
// apart, when it keeps its current part (`said` keeps the sentence as
// written). Returns how many statements it superseded.
int64_t mark_changes(std::vector<UserStatement>& statements);

// The things a statement names: runs of adjacent specific words ("Ford
// Bronco", "graphic designer", "Nairobi"), possessives stripped.
std::vector<std::string> named_things(const UserStatement& statement);

// True when `kind` (a generator's one-word label of a named thing) is
// something a person has one of at a time: the city they live in, their
// employer, their job, their car, their diet. A newer one of these replaces
// the older; a newer pet, friend or hobby does not.
bool single_valued_kind(std::string_view kind);

// Implicit updates: "Picking up my new Ford Bronco" after "I drive a Honda
// Civic" replaces the car, though no rule of extract_statements links the
// two without knowing both are cars. `kinds` maps named things to their
// kind (a generator labels them; augmenter.h). A statement with a start cue
// ("new", "now", "joined", "became", "first day", …) that names a
// single-valued thing for the first time makes stale every other thing of
// the same kind that only earlier conversations named; every statement
// naming a stale thing is marked superseded. Returns how many statements it
// newly marked.
int64_t mark_replaced_by_kind(std::vector<UserStatement>& statements,
                              const std::map<std::string, std::string>& kinds);

}  // namespace mnemo

#pragma once
// Passwords with the characters that break naive masking, written into
// connection strings the ways a user might, and a check that none of it shows.
#include <catch2/catch.hpp>

#include <cctype>
#include <string>
#include <vector>

namespace orchestratord::test {

// "Alpha7" <special> "Bravo9": each half is long enough that finding it in
// a message means a piece of the password leaked, not a coincidence.
inline std::vector<std::string> special_passwords() {
    std::vector<std::string> passwords;
    for (const char* special : {"?", "@", "%", "/", "#", ":", " "}) {
        passwords.push_back(std::string("Alpha7") + special + "Bravo9");
    }
    passwords.push_back("Alpha7?@%/#: Bravo9");  // all of them
    return passwords;
}

// Written again here on purpose, not taken from daemon/pg/conninfo.cpp: the
// inputs of a masking test must not come from the code under test.
inline std::string percent_encode(const std::string& text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

// A key=value value in single quotes, as libpq reads it.
inline std::string quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

struct ConnectionForm {
    std::string description;
    std::string conninfo;
};

// `password` for `user` at host:port/dbname in every form: URL with the
// password percent-encoded, as typed (unencoded), as a query parameter;
// key=value quoted and unquoted.
inline std::vector<ConnectionForm> connection_forms(const std::string& user, const std::string& password,
                                                    const std::string& host, const std::string& port,
                                                    const std::string& dbname) {
    const std::string where = host + ":" + port + "/" + dbname;
    const std::string keywords = "host=" + host + " port=" + port + " dbname=" + dbname + " user=" + user;
    return {
        {"URL, percent-encoded", "postgresql://" + user + ":" + percent_encode(password) + "@" + where},
        {"URL, unencoded", "postgresql://" + user + ":" + password + "@" + where},
        {"URL, query parameter", "postgresql://" + where + "?user=" + user + "&password=" + percent_encode(password)},
        {"URL, unencoded query parameter", "postgresql://" + where + "?user=" + user + "&password=" + password},
        {"key=value, quoted", keywords + " password=" + quoted(password)},
        {"key=value, unquoted", keywords + " password=" + password},
    };
}

// Fails when `text` shows the password, decoded or encoded, or any of its
// words of 5 or more letters and digits (a piece split off at a delimiter).
inline void check_no_password(const std::string& text, const std::string& password) {
    INFO("password " << password << " in:\n" << text);
    CHECK_THAT(text, !Catch::Contains(password));
    CHECK_THAT(text, !Catch::Contains(percent_encode(password)));
    std::string word;
    for (size_t i = 0; i <= password.size(); ++i) {
        if (i < password.size() && std::isalnum(static_cast<unsigned char>(password[i]))) {
            word += password[i];
            continue;
        }
        if (word.size() >= 5) CHECK_THAT(text, !Catch::Contains(word));
        word.clear();
    }
}

}  // namespace orchestratord::test

// The .nn language. A file is a sequence of declarations: models (inputs,
// labels, bindings, outputs, losses), reusable layers, and train blocks.
// Train blocks hold settings, calls and nested blocks generically, so later
// features (several optimization steps for a GAN, an environment for RL) are
// new names checked by Sema, not new syntax. Keep docs/LANGUAGE.md in step.
grammar NN;

program     : decl* EOF ;
replExpr    : expr EOF ;   // one expression on its own (the REPL evaluates these)
replStmt    : modelStmt ';'? EOF ;   // one model statement typed at the REPL's prompt
decl        : modelDecl | layerDecl | trainDecl ;

modelDecl   : 'model' name=ID '{' (modelStmt ';'?)* '}' ;
modelStmt   : 'input' name=ID ':' tensorType              # inputStmt
            | 'label' name=ID ':' tensorType              # labelStmt
            | 'output' name=ident '=' expr                # outputStmt
            | 'loss' (name=ID ('updates' sel+=selector (',' sel+=selector)*)?)? '=' expr  # lossStmt
            | name=ID (',' more+=ID)* '=' expr             # letStmt
            ;

layerDecl   : 'layer' name=ID '(' (layerParam (',' layerParam)*)? ')' '{' (layerStmt ';'?)* '}' ;
layerParam  : name=ID ('=' expr)? ;
layerStmt   : 'return' expr                               # returnStmt
            | name=ID (',' more+=ID)* '=' expr             # layerLetStmt
            ;

trainDecl   : 'train' name=ID '{' (trainStmt ';'?)* '}' ;
trainStmt   : key=ident '=' expr                          # trainSetting
            | callee=ident '(' argList? ')'               # trainCall
            | kind=ident (name=ID)? '{' (trainStmt ';'?)* '}'  # trainBlock
            ;

selector    : ID ('.' ID)* ;   // a layer instance, a parameter or a set (weights, ...)

tensorType  : dtype=ID '[' (dim (',' dim)*)? ']' ;
dim         : INT | ID ;

expr        : primary                                     # primaryExpr
            | <assoc=right> expr op='^' expr              # powExpr
            | '-' expr                                    # negExpr
            | expr op=('*' | '/') expr                    # mulExpr
            | expr op=('+' | '-') expr                    # addExpr
            | expr '|>' pipeTarget                        # pipeExpr
            ;
pipeTarget  : callee=ident ('(' argList? ')')? ('as' inst=ID)? ;

primary     : callee=ident '(' argList? ')' ('as' inst=ID)?   # callPrimary
            | ident ('.' fields+=ID)*                     # namePrimary
            | (INT | FLOAT)                               # numberPrimary
            | STRING                                      # stringPrimary
            | '(' expr ')'                                # parenPrimary
            | '[' (expr (',' expr)*)? ']'                 # listPrimary
            ;
argList     : arg (',' arg)* ;
arg         : (name=ident '=')? expr ;

// Keywords may still name arguments and settings (csv(label = last)), but not
// bindings: `loss = ...` must be a loss statement, never a binding named loss.
ident       : ID | 'input' | 'label' | 'output' | 'loss' | 'model' | 'layer' | 'train' | 'updates' ;

ID          : [a-zA-Z_] [a-zA-Z_0-9]* ;
FLOAT       : [0-9]+ '.' [0-9]* EXPONENT? | '.' [0-9]+ EXPONENT? | [0-9]+ EXPONENT ;
INT         : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? [0-9]+ ;
STRING      : '"' (~["\\\r\n] | '\\' .)* '"' ;
LINE_COMMENT  : '//' ~[\r\n]* -> skip ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
WS          : [ \t\r\n]+ -> skip ;
ERRCHAR     : . ;
